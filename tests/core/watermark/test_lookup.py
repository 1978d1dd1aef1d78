"""Settling a short clip's payload through a run's lookup table, on real marked speech."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audio_synth_core.store import layout
from audio_synth_core.watermark import THRESHOLD_Z, WatermarkKey, detect, payload_codec
from audio_synth_core.watermark.embedder import embed
from audio_synth_core.watermark.lookup import lookup_table, resolve
from tests.factories import speech


def _table(item_ids: list[str]):
    items = pd.DataFrame(
        {
            "id": item_ids,
            "status": ["ok"] * len(item_ids),
            "watermark_payload": [payload_codec.payload_of(i) for i in item_ids],
            "catalog_id": item_ids,
            "audio_path": [layout.audio(i, "flac") for i in item_ids],
        }
    )
    return lookup_table(items, "test-000000000001", "fp", "audio-synth-ss1")


def test_short_clips_never_name_a_wrong_payload_and_the_table_names_the_right_item():
    # About 2 s of speech carries roughly two thirds of the coded payload: some keys leave two
    # payloads indistinguishable. Detection must then claim none; the table must settle it.
    clean, rate = speech("Diese Lampe ist leise und sparsam.", "de")
    assert 1.8 < len(clean) / rate < 2.6
    rng = np.random.default_rng(3)
    others = [f"{i:020x}" for i in rng.integers(0, 2**62, 2000)]
    uncertain = 0
    for k in range(24):
        key = WatermarkKey(bytes(rng.integers(0, 256, 32, dtype=np.uint8)))
        item = f"{k:020x}"
        marked = embed(clean, rate, key, payload_codec.payload_of(item))
        found = detect(np.round(marked * 32767) / 32767, rate, key, THRESHOLD_Z)
        assert found.detected
        assert found.payload in (None, payload_codec.payload_of(item))
        uncertain += found.payload is None
        payload, matches = resolve(_table([*others, item]), found)
        assert payload == payload_codec.payload_of(item)
        assert [m["id"] for m in matches] == [item]
        # A file of another run (its item not in the table) maps to nothing.
        assert resolve(_table(others), found)[1] == []
    assert uncertain > 0  # the case this guards against did come up
