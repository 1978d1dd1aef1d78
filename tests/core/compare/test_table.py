"""The comparison table (compare/table.py): paired bootstrap CIs, missing values, metric
directions from the validators, and the gate statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audio_synth_core.compare.table import (
    _UNDECLARED_DIRECTIONS,
    PASS_RATE,
    TABLE_COLUMNS,
    compare_table,
    gate_stats,
    metric_direction,
    table_records,
)
from audio_synth_core.validators.base import registered_fields

from .conftest import frames, synthetic


def test_paired_bootstrap_ci_contains_the_true_difference() -> None:
    a, b = synthetic(np.random.default_rng(1), 30, -0.05)
    table = compare_table(frames(a, b), ["wer"], n_boot=2000, seed=0)
    assert list(table.columns) == TABLE_COLUMNS
    ref, other = table.iloc[0], table.iloc[1]
    assert ref["candidate"] == "a" and pd.isna(ref["diff_mean"])  # the reference has no difference
    assert other["n_paired"] == 30 and other["diff_mean"] == pytest.approx(float(np.mean(b - a)))
    assert other["diff_ci_low"] < -0.05 < other["diff_ci_high"] < 0
    # Unpaired, the two means' CIs overlap heavily; the paired CI is far narrower.
    assert other["ci_low"] < ref["ci_high"]
    paired_width = other["diff_ci_high"] - other["diff_ci_low"]
    assert paired_width < 0.25 * (ref["ci_high"] - ref["ci_low"])
    # Same seed, same table.
    pd.testing.assert_frame_equal(table, compare_table(frames(a, b), ["wer"], n_boot=2000, seed=0))


def test_paired_bootstrap_coverage_is_near_nominal() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    for i in range(100):
        a, b = synthetic(rng, 30, 0.03)
        row = compare_table(frames(a, b), ["wer"], n_boot=400, seed=i).iloc[1]
        covered += row["diff_ci_low"] <= 0.03 <= row["diff_ci_high"]
    assert covered >= 85  # nominal 95; percentile bootstrap at n=30 runs a little narrow


def test_missing_values_shrink_the_pairs_not_thedecision_table() -> None:
    a = np.array([0.1, 0.2, np.nan, 0.4])
    b = np.array([0.1, np.nan, 0.3, 0.2])
    both = frames(a, b)
    both["b"] = both["b"].iloc[[0, 1, 2]]  # and one prompt missing entirely
    row = compare_table(both, ["wer"], n_boot=100).iloc[1]
    assert row["n"] == 2 and row["n_paired"] == 1 and row["diff_mean"] == pytest.approx(0.0)
    assert pd.isna(row["diff_ci_low"])  # one pair: no interval


def test_table_records_are_json_safe() -> None:
    a, b = synthetic(np.random.default_rng(2), 5, 0.0)
    records = table_records(compare_table(frames(a, b), ["wer", PASS_RATE], n_boot=50))
    assert json.dumps(records, allow_nan=False) and records[0]["diff_mean"] is None


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("wer", "lower"),
        ("cer", "lower"),
        ("snr_db", "higher"),
        ("mos_ovrl", "higher"),
        ("max_similarity", "lower"),
        (PASS_RATE, "higher"),
        ("duration_s", None),  # no better way: a promotion on it must say which
        ("no_such_metric", None),
    ],
)
def test_metric_direction(metric: str, direction: str | None) -> None:
    assert metric_direction(metric) == direction


def test_local_directions_only_for_what_no_validator_declares() -> None:
    assert not set(_UNDECLARED_DIRECTIONS) & set(registered_fields())


def test_gate_stats_flags_four_fifths_and_privacy() -> None:
    kinds = ["q"] * 5 + ["s"] * 5
    frame = pd.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(10)],
            "attributes": [json.dumps({"kind": k}) for k in kinds],
            "status": ["ok"] * 9 + ["failed"],
            "passed": [True] * 5 + [True, False, False, False, False],
            "failed_checks": [None] * 5
            + [None, "privacy_similarity", "max_wer", "max_wer", "generation"],
        }
    )
    stats = gate_stats(frame, n_boot=50)
    assert stats.n_items == 10 and stats.n_failed == 1 and stats.pass_rate == pytest.approx(0.6)
    assert stats.privacy_flags == 1 and stats.parity_attributes == ("kind",)
    assert len(stats.four_fifths_flags) == 1 and "kind" in stats.four_fifths_flags[0]
    assert gate_stats(frame.iloc[:4], n_boot=50).parity_attributes == ()  # groups too small
