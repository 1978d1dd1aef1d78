"""The allocation: exact largest-remainder counts, bounds, raking, and balance within tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audio_synth_core.config.dataset import BalanceConfig, parse_spec
from audio_synth_core.dataset import balance
from audio_synth_core.dataset.plan import build_plan
from audio_synth_core.errors import ConfigError
from audio_synth_core.generators.espeak import EspeakGenerator
from tests.core.dataset.specs import spec


@pytest.mark.parametrize(
    ("total", "shares", "expected"),
    [
        (10, [1, 1, 1], [4, 3, 3]),
        (7, [0.5, 0.25, 0.25], [3, 2, 2]),  # remainders .5 < .75 = .75
        (100, [0.7, 0.15, 0.15], [70, 15, 15]),
        (1, [1, 1], [1, 0]),
        (0, [1, 2], [0, 0]),
        (5, [0, 1], [0, 5]),
    ],
)
def test_largest_remainder(total, shares, expected):
    got = balance.largest_remainder(total, np.array(shares, dtype=float))
    assert got.tolist() == expected


def test_largest_remainder_is_exact_at_scale():
    rng = np.random.default_rng(0)
    shares = rng.random(1000)
    counts = balance.largest_remainder(3_000_001, shares)
    assert counts.sum() == 3_000_001
    assert np.abs(counts - 3_000_001 * shares / shares.sum()).max() < 1


def test_water_fill_respects_bounds():
    share = balance.water_fill(np.ones(3), np.array([0.6, 0, 0]), np.array([1, 0.1, 1]), "gender")
    assert share == pytest.approx([0.6, 0.1, 0.3])
    with pytest.raises(ConfigError, match="impossible balance constraints on gender"):
        balance.water_fill(np.ones(2), np.array([0.7, 0.7]), np.ones(2), "gender")


def test_raking_meets_two_margins():
    gender = ["f", "f", "m", "m", "m", "m"]
    accent = ["a", "b", "a", "a", "a", "b"]
    cfg = BalanceConfig(by=["gender", "accent"])
    w, targets = balance.speaker_weights({"gender": gender, "accent": accent}, cfg)
    assert targets == {"gender": {"f": 0.5, "m": 0.5}, "accent": {"a": 0.5, "b": 0.5}}
    assert w[:2].sum() == pytest.approx(0.5, abs=1e-5)
    assert w[[0, 2, 3, 4]].sum() == pytest.approx(0.5, abs=1e-5)


def test_interleave_spreads_groups_in_proportion():
    seq = balance.interleave(np.array([6, 3, 3]))
    assert np.bincount(seq).tolist() == [6, 3, 3]
    # Every window of 4 holds 2 of group 0 and 1 each of the others.
    for start in range(0, 12, 4):
        assert np.bincount(seq[start : start + 4], minlength=3).tolist() == [2, 1, 1]


def _plan(**changes):
    return build_plan(parse_spec(spec(**changes)), EspeakGenerator())


def test_plan_meets_gender_balance_and_source_shares_within_tolerance():
    plan = _plan()
    groups = pd.DataFrame(plan.report["groups"])
    checked = groups[groups["target_share"].notna()]
    assert len(checked) > 0
    assert checked["within_tolerance"].all(), checked
    gender = groups[groups["attribute"] == "gender"].set_index("group")["planned_share"]
    assert gender["female"] == pytest.approx(0.5, abs=0.05)
    assert plan.rows["source"].value_counts().to_dict() == {"cmds": 360, "silence": 60}
    assert len(plan.rows) == 420


def test_every_text_is_used_evenly_within_a_split():
    plan = _plan()
    train = plan.rows[(plan.rows["split"] == "train") & (plan.rows["source"] == "cmds")]
    counts = train["text"].value_counts()
    assert counts.max() - counts.min() <= 1
    # One speaker's items are distinct texts while it has fewer items than there are texts.
    per_speaker = train.groupby("speaker_id")["text"].agg(["size", "nunique"])
    small = per_speaker[per_speaker["size"] <= 6]
    assert (small["size"] == small["nunique"]).all()


def test_constraint_shifts_the_gender_share():
    plan = _plan(
        balance={
            "by": ["speaker"],
            "constraints": [{"attribute": "gender", "value": "female", "min_share": 0.7}],
            "tolerance": 0.05,
        }
    )
    speech = plan.rows[plan.rows["kind"] == "speech"]
    share = (speech["gender"] == "female").mean()
    assert 0.65 <= share <= 0.8


def test_impossible_constraint_is_a_clear_error():
    with pytest.raises(ConfigError, match="impossible balance constraint: gender='female'"):
        _plan(
            speakers={**spec()["speakers"], "variants": ["m1", "m3"]},
            balance={"constraints": [{"attribute": "gender", "value": "female", "min_share": 0.3}]},
        )


def test_size_in_hours_counts_augmented_copies():
    plan_utt = _plan(size={"utterances": 300})
    with_copies = _plan(
        size={"utterances": 300},
        augmentation={"keep_clean": True, "copies": 2, "gain": {"db": [-3, 3]}},
    )
    assert len(plan_utt.rows) == 300 and len(with_copies.rows) == 100
    hours = _plan(size={"hours": 0.1})
    assert 200 < len(hours.rows) < 700  # ~0.1 h of ~0.7-1 s clips


def test_plan_is_deterministic_and_seeded():
    a, b = _plan(), _plan()
    assert a.run_id == b.run_id and a.rows["id"].tolist() == b.rows["id"].tolist()
    c = _plan(seed=4)
    assert c.run_id != a.run_id


def test_allocation_scales_to_many_items():
    plan = _plan(size={"utterances": 60_000}, speakers={**spec()["speakers"], "count": 300})
    assert len(plan.rows) == 60_000
    per_speaker = plan.rows[plan.rows["kind"] == "speech"]["speaker_id"].value_counts()
    assert per_speaker.size == 300
    # Raked weights: gender balance first, then as even as that allows.
    assert per_speaker.max() / per_speaker.min() < 2.5
