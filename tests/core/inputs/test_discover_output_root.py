"""``discover`` on an audio-synth output root: its items point at where the output is now, as
absolute URLs (the audio stays outside the validate run's own output)."""

from __future__ import annotations

import hashlib
import shutil

import pyarrow as pa

from audio_synth_core.audio import encode
from audio_synth_core.inputs.datasets import discover
from audio_synth_core.pipeline import runs
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store, read_uri
from tests.factories import tone

IDS = ("aa" + "0" * 18, "bb" + "1" * 18)


def _output(root: str, item_schema: pa.Schema = schema.ITEM_SCHEMA) -> Store:
    """A committed catalog run of two tones, written like generate_shard writes them."""
    store = Store(root)
    rows = []
    for i, item_id in enumerate(IDS):
        data = encode(tone(300.0 + 100 * i), 16000, "flac")
        rel = layout.audio(item_id, "flac")
        store.write_bytes(rel, data)
        row = {n: None for n in item_schema.names}
        row.update(
            id=item_id,
            catalog_id=f"c{i}",
            generator="espeak",
            status=schema.STATUS_OK,
            audio_format="flac",
            audio_uri=store.uri(rel),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        if "audio_path" in item_schema.names:
            row["audio_path"] = rel
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=item_schema)
    store.write_table(layout.items_part("r1", "part-00000"), table)
    runs.commit(store, "catalog", "r1", {}, {})
    return store


def test_a_moved_output_is_discovered_at_its_new_place(tmp_path):
    _output(str(tmp_path / "a"))
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = Store(str(tmp_path / "b"))
    items = discover(moved.url).to_pylist()
    assert [r["id"] for r in items] == list(IDS)
    for row in items:
        assert row["audio_path"] is None  # relative to the input, not to the validate output
        assert row["audio_uri"] == moved.uri(layout.audio(row["id"], "flac"))
        assert hashlib.sha256(read_uri(row["audio_uri"])).hexdigest() == row["sha256"]


def test_an_output_written_before_audio_path_is_discovered(tmp_path):
    v1 = pa.schema([f for f in schema.ITEM_SCHEMA if f.name != "audio_path"])
    store = _output(str(tmp_path / "v1"), v1)
    items = discover(store.url).to_pylist()
    assert [r["audio_uri"] for r in items] == [store.uri(layout.audio(i, "flac")) for i in IDS]
    assert all(r["audio_path"] is None for r in items)
