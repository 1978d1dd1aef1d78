"""What every validator declares about its metrics and checks, as the rest of the pipeline reads it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from audio_synth_core.audio import encode
from audio_synth_core.pipeline.validate import validate_row, validate_rows
from audio_synth_core.plugins import registry as plugins
from audio_synth_core.validators.base import (
    Clip,
    MetricField,
    Validator,
    registered_fields,
    registered_flag_checks,
)
from tests import factories


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


class _Loud(Validator):
    """Peak of a clip; raises on a clip named "bad", and can fail a whole batch."""

    name = "loud"
    fields = (MetricField("loud_peak", pa.float64(), "FS", "peak"),)

    def __init__(self, fail_batch: bool = False) -> None:
        super().__init__()
        self.fail_batch = fail_batch
        self.batches: list[int] = []

    def measure(self, clip: Clip) -> dict:
        if clip.id == "bad":
            raise RuntimeError("cannot measure bad")
        return {"loud_peak": float(np.max(np.abs(clip.audio)))}

    def measure_many(self, clips):
        self.batches.append(len(clips))
        if self.fail_batch:
            raise RuntimeError("batch exploded")
        return super().measure_many(clips)


def test_measure_many_defaults_to_measure_with_per_clip_errors():
    clips = [Clip(i, factories.tone(dbfs=-6.0), 16000) for i in ("a", "bad", "c")]
    a, bad, c = _Loud().measure_many(clips)
    assert a == c == {"loud_peak": float(np.max(np.abs(clips[0].audio)))}
    assert isinstance(bad, RuntimeError) and "bad" in str(bad)


def test_validate_rows_batches_and_isolates_items():
    """One measure_many call per validator for the decodable clips; errors stay per item."""
    good = encode(*factories.speech(factories.SENTENCES[0]))
    items = [({"id": "a"}, good, None), ({"id": "bad"}, good, None), ({"id": "junk"}, b"x", None)]
    loud = _Loud()
    a, bad, junk = validate_rows(items, [loud])
    assert loud.batches == [2]  # the undecodable file is not measured
    assert a["passed"] and a["loud_peak"] > 0.1 and a["validation_error"] is None
    assert not bad["passed"] and bad["failed_checks"] == "loud.error"
    assert "cannot measure bad" in bad["validation_error"]
    assert junk["failed_checks"] == "decode"
    assert validate_row(items[0][0], good, [_Loud()]) == a
    # A batch-level bug is every item's recorded error, never a lost shard.
    a, bad, junk = validate_rows(items, [_Loud(fail_batch=True)])
    assert a["failed_checks"] == bad["failed_checks"] == "loud.error"
    assert "batch exploded" in a["validation_error"]
