"""Report samples of a moved output: ``audio_path`` is read under the store it was opened at."""

from __future__ import annotations

import pandas as pd

from audio_synth_core.assessment.assess import pick_samples
from audio_synth_core.audio import encode
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store
from tests.factories import tone


def _items(store: Store, stale_root: str) -> pd.DataFrame:
    rows = []
    for i, item_id in enumerate(("aa" + "0" * 18, "bb" + "1" * 18, "cc" + "2" * 18)):
        rel = layout.audio(item_id, "flac")
        store.write_bytes(rel, encode(tone(300.0 + 100 * i), 16000, "flac"))
        rows.append(
            {
                "id": item_id,
                "status": schema.STATUS_OK,
                "passed": i != 0,
                "duration_s": 1.0,
                # Written elsewhere, then the output was moved: the absolute URL is stale.
                "audio_uri": f"{stale_root}/{rel}",
                "audio_path": rel,
            }
        )
    return pd.DataFrame(rows)


def test_samples_are_read_through_the_relative_path(tmp_path):
    store = Store(str(tmp_path / "moved"))
    df = _items(store, str(tmp_path / "gone"))
    samples = pick_samples(df, 2, store=store)
    assert [s["label"] for s in samples] == ["worst", "best"]
    assert samples[0]["id"] == df.loc[0, "id"]  # the failed item is the worst
    for sample in samples:
        rel = layout.audio(sample["id"], "flac")
        assert sample["audio_bytes"] == store.read_bytes(rel) and sample["mime"] == "audio/flac"
    # Without the store only the stale absolute URLs are known: nothing can be read.
    assert pick_samples(df, 2) == []


def test_imported_audio_without_a_relative_path_uses_its_url(tmp_path):
    store = Store(str(tmp_path / "elsewhere"))
    # A null read back from Parquet is NaN: not a path.
    df = _items(store, store.url).assign(audio_path=float("nan"))
    samples = pick_samples(df, 2, store=Store(str(tmp_path / "validate-out")))
    assert len(samples) == 2
    assert all(s["audio_bytes"][:4] == b"fLaC" and s["mime"] == "audio/flac" for s in samples)
