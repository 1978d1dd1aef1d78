"""The ``watermark`` validator: detection, payload and the item it maps to, on real speech."""

from __future__ import annotations

import pandas as pd
import pytest

from audio_synth_core.errors import ConfigError
from audio_synth_core.plugins import registry
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import Clip, ValidationContext, build_validator
from audio_synth_core.validators.watermark import WatermarkValidator
from audio_synth_core.watermark import WatermarkKey, WatermarkSettings, mark
from audio_synth_core.watermark.lookup import LOOKUP_SCHEMA, find, lookup_table
from audio_synth_core.watermark.payload import payload_of
from tests.factories import SENTENCES, speech

KEY_HEX = "11" * 16 + "22" * 16
ITEM = "abcdef0123456789abcd"


@pytest.fixture
def validator(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIO_SYNTH_WATERMARK_KEY", KEY_HEX)
    items = pd.DataFrame(
        {
            "id": [ITEM, "ffff0000ffff0000ffff"],
            "status": ["ok", "failed"],
            "watermark_payload": [payload_of(ITEM), None],
            "catalog_id": ["kettle", "lamp"],
            "audio_path": [layout.audio(ITEM, "flac"), None],
        }
    )
    table = lookup_table(items, "test-000000000001", "fp", "audio-synth-ss1")
    assert table.schema == LOOKUP_SCHEMA and table.num_rows == 1  # failed items have no mark
    assert find(table, payload_of(ITEM))[0]["catalog_id"] == "kettle"
    Store(str(tmp_path)).write_table(layout.watermarks("test-000000000001"), table)
    with registry.register(registry.VALIDATORS, "watermark", WatermarkValidator):
        v = build_validator("watermark", {"lookup": str(tmp_path), "require": True})
    v.prepare(ValidationContext())
    return v


def test_a_marked_clip_is_detected_and_mapped_to_its_item_and_run(validator):
    clean, rate = speech(SENTENCES[0] + " " + SENTENCES[1])
    marked, payload = mark(
        clean, rate, WatermarkSettings(WatermarkKey(bytes.fromhex(KEY_HEX))), ITEM
    )
    metrics = validator.measure(Clip("x", marked, rate))
    assert metrics["watermark_detected"] and metrics["watermark_confidence"] > 0.999
    assert metrics["watermark_payload"] == payload
    assert metrics["watermark_item_id"] == ITEM
    assert metrics["watermark_run_id"] == "test-000000000001"
    assert validator.check(metrics) == []
    names = {f.name for f in validator.fields}
    assert set(metrics) == names


def test_unmarked_audio_fails_a_required_mark(validator):
    clean, rate = speech(SENTENCES[2])
    metrics = validator.measure(Clip("y", clean, rate))
    assert not metrics["watermark_detected"]
    assert metrics["watermark_payload"] is None and metrics["watermark_item_id"] is None
    (failed,) = validator.check(metrics)
    assert failed.check == "watermark_missing"


def test_no_key_is_a_clear_error_and_keys_are_not_parameters(monkeypatch, tmp_path):
    monkeypatch.delenv("AUDIO_SYNTH_WATERMARK_KEY", raising=False)
    monkeypatch.setenv("AUDIO_SYNTH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="AUDIO_SYNTH_WATERMARK_KEY is unset"):
        WatermarkValidator()
    with pytest.raises(ValueError, match="unknown parameter"):
        WatermarkValidator(key=KEY_HEX)
