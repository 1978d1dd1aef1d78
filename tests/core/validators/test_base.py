"""What every validator declares about its metrics and checks, as the rest of the pipeline reads it."""

from __future__ import annotations

import pyarrow as pa
import pytest

from audio_synth_core.plugins import registry as plugins
from audio_synth_core.validators.base import (
    MetricField,
    registered_fields,
    registered_flag_checks,
)


def test_a_metric_declared_twice_is_declared_the_same():
    """registered_fields keeps the first declaration: it must not matter which one that is."""
    seen: dict[str, tuple[str, MetricField]] = {}
    for name in sorted(plugins.available(plugins.VALIDATORS)):
        for f in plugins.load(plugins.VALIDATORS, name).fields:
            if f.name in seen:
                assert f == seen[f.name][1], f"{f.name}: {seen[f.name][0]} and {name} disagree"
            seen.setdefault(f.name, (name, f))
    assert set(registered_fields()) == set(seen)


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("wer", "lower"),
        ("cer", "lower"),
        ("clipping_ratio", "lower"),
        ("silence_ratio", "lower"),
        ("max_similarity", "lower"),
        ("noise_floor_dbfs", "lower"),
        ("snr_db", "higher"),
        ("mos_ovrl", "higher"),
        ("mos_sig", "higher"),
        ("mos_bak", "higher"),
        ("mos_p808", "higher"),
        # neither way is better: levels, lengths, and the speed of the measuring itself
        ("rms_dbfs", None),
        ("peak_dbfs", None),
        ("duration_s", None),
        ("asr_rtf", None),
    ],
)
def test_directions(metric: str, direction: str | None):
    assert registered_fields()[metric].direction == direction


def test_sample_priorities_keep_the_report_order():
    ranked = sorted(
        (f.sample_priority, name)
        for name, f in registered_fields().items()
        if f.sample_priority is not None
    )
    assert [name for _, name in ranked] == ["mos_ovrl", "wer", "snr_db", "rms_dbfs"]


def test_ranges_and_directions_only_on_numeric_metrics():
    for f in registered_fields().values():
        if f.valid_range is not None or f.direction is not None or f.sample_priority is not None:
            assert pa.types.is_floating(f.type) or pa.types.is_integer(f.type), f.name


def test_privacy_similarity_is_the_only_shipped_flag_check():
    from audio_synth_core.validators.privacy import SIMILARITY_CHECK

    assert registered_flag_checks() == {SIMILARITY_CHECK}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"direction": "up"}, "direction must be"),
        ({"valid_range": (1.0, 0.0)}, "is empty"),
    ],
)
def test_metric_field_rejects_nonsense(kwargs: dict, problem: str):
    with pytest.raises(ValueError, match=problem):
        MetricField("x", pa.float64(), "", "", **kwargs)
