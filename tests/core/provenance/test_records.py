"""The per-item provenance record: table-driven over the generators' kinds of version."""

from __future__ import annotations

import json

import pytest

from audio_synth_core.provenance.records import RECORD_SCHEMA, item_record, parse_record

ROW = {
    "id": "abc123",
    "run_id": "demo-1",
    "generator": "espeak",
    "generator_version": "1.52",
    "generator_params": json.dumps({"rate_wpm": 175}),
    "voice": "en-us+f3",
    "language": "en",
    "persona": "narrator-anna@2",
    "seed": 42,
    "watermark_payload": 0xDEADBEEF,
    "sha256": "f" * 64,
    "audio_format": "flac",
    "sample_rate_hz": 22050,
    "num_samples": 22050,
    "created_at": "2026-12-02T10:00:00+00:00",
}


def test_record_names_everything_that_made_the_audio():
    record = parse_record(item_record(ROW))
    assert record["schema"] == RECORD_SCHEMA
    assert record["item_id"] == "abc123"
    assert record["generator"] == {"name": "espeak", "version": "1.52", "model": None}
    assert record["voice"] == "en-us+f3"
    assert record["persona"] == {"name": "narrator-anna", "version": 2}
    assert record["seed"] == 42
    assert record["params"] == {"rate_wpm": 175}
    assert record["watermark"]["payload"] == 0xDEADBEEF
    assert record["audio"]["sha256"] == "f" * 64
    assert record["created_at"] == "2026-12-02T10:00:00+00:00"
    assert record["digital_source_type"] == "trainedAlgorithmicMedia"


def test_record_is_canonical_and_pure():
    assert item_record(ROW) == item_record(dict(reversed(list(ROW.items()))))
    changed = item_record({**ROW, "seed": 43})
    assert changed != item_record(ROW)


@pytest.mark.parametrize(
    ("version", "params", "model"),
    [
        ("models:/tts/3", {}, {"uri": "models:/tts/3", "version": "3"}),
        # The neural generator resolves an alias and records "name/version".
        ("tts/3", {"model_uri": "models:/tts@champion"}, {"uri": "models:/tts/3", "version": "3"}),
        ("sha256:0123abcd", {"bundle": "/m/b"}, {"uri": "/m/b", "version": "sha256:0123abcd"}),
        ("1.52", {"rate_wpm": 175}, None),
    ],
)
def test_model_uri_and_version(version, params, model):
    row = {**ROW, "generator_version": version, "generator_params": json.dumps(params)}
    assert parse_record(item_record(row))["generator"]["model"] == model


def test_plain_voice_unmarked_audio_and_bad_rows():
    record = parse_record(item_record({**ROW, "persona": None, "watermark_payload": None}))
    assert record["persona"] is None and record["watermark"] is None
    with pytest.raises(ValueError, match="'generator'"):
        item_record({**ROW, "generator": None})
    with pytest.raises(ValueError, match="not an audio-synth provenance record"):
        parse_record('{"schema": "other"}')
