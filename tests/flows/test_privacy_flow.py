"""Privacy inside a generation run: outputs that resemble a protected voice are flagged and
quarantined, other voices are not."""

from __future__ import annotations

import pytest
import soundfile as sf

from audio_synth_core.store.storage import Store
from flows.api import read_items, run_catalog
from flows.outcome import GateFailed
from tests.conftest import small_config, write_catalog
from tests.factories import SENTENCES, speech

pytestmark = pytest.mark.slow


def test_protected_voice_is_flagged_and_quarantined(prefect_api, tmp_path):
    refs = tmp_path / "protected" / "speaker-a"
    refs.mkdir(parents=True)
    for i, text in enumerate(SENTENCES[:5]):
        audio, rate = speech(text, "en-us+f3")
        sf.write(refs / f"{i}.flac", audio, rate)
    rows = [
        {"id": f"{voice}-{i}", "text": text, "voice": voice}
        for i, text in enumerate(SENTENCES[5:])
        for voice in ("en-us+f3", "en-us+m7")
    ]
    privacy = {
        "name": "privacy",
        "params": {
            "reference_url": str(tmp_path / "protected"),
            "level": "medium",
            "quarantine": True,
        },
    }
    cfg = small_config(
        write_catalog(tmp_path / "c.csv", rows),
        str(tmp_path / "out"),
        validation={
            "validators": [{"name": "quality"}, privacy],
            "gate": {"min_pass_rate": 0.0, "max_privacy_flags": 0},
        },
    )
    with pytest.raises(GateFailed, match="resemble a protected speaker") as failed:
        run_catalog(cfg)
    items = read_items(str(tmp_path / "out"), failed.value.manifest["run_id"]).set_index(
        "catalog_id"
    )
    clone = items[items.index.str.startswith("en-us+f3")]
    other = items[items.index.str.startswith("en-us+m7")]
    assert (clone["max_similarity"] > 0.8).all() and clone["quarantined"].all()
    assert clone["failed_checks"].str.contains("privacy_similarity").all()
    assert (other["max_similarity"] < 0.8).all() and not other["quarantined"].any()
    assert (clone["nearest_reference"] == "speaker-a").all()
    store = Store(str(tmp_path / "out"))
    for item_id in clone["id"]:
        assert not store.exists(f"audio/{item_id[:2]}/{item_id}.flac")
        assert store.exists(f"quarantine/audio/{item_id[:2]}/{item_id}.flac")
