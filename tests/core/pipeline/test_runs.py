"""The run lifecycle: prepare (plan parts once, pending shards), commit (manifest last, LATEST),
read back."""

from __future__ import annotations

import pyarrow as pa
import pytest

from audio_synth_core.pipeline import runs
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store


def _items(n: int) -> pa.Table:
    return pa.table({"id": [f"i{i:03d}" for i in range(n)], "status": ["ok"] * n})


def _done(spec: runs.ShardSpec) -> str:
    return layout.items_part(spec.run_id, spec.name)


def test_make_shards_covers_every_item_once():
    shards = runs.make_shards("r", 10, 4)
    assert [s.n_items for s in shards] == [4, 4, 2]
    assert [s.name for s in shards] == ["part-00000", "part-00001", "part-00002"]
    assert runs.make_shards("r", 0, 4) == []
    assert runs.ShardSpec("r", 3, 5, label="cand-a").name == "cand-a"


def test_prepare_writes_each_part_once_and_returns_pending(tmp_path):
    store = Store(str(tmp_path))
    shards = runs.make_shards("r1", 10, 4)
    pending = runs.prepare(store, _items(10), shards, layout.plan_dir("r1"), _done)
    assert pending == shards
    assert store.read_table(layout.plan_part("r1", "part-00002")).column("id").to_pylist() == [
        "i008",
        "i009",
    ]
    # A resumed run: shard 1 committed, and a plan part is never rewritten.
    store.write_table(_done(shards[1]), _items(4))
    store.write_table(layout.plan_part("r1", "part-00000"), _items(1))
    pending = runs.prepare(store, _items(10), shards, layout.plan_dir("r1"), _done)
    assert [s.index for s in pending] == [0, 2]
    assert store.read_table(layout.plan_part("r1", "part-00000")).num_rows == 1


def test_commit_writes_manifest_then_latest_and_reads_back(tmp_path):
    store = Store(str(tmp_path))
    assert runs.completed(store, "r1") is None
    with pytest.raises(FileNotFoundError, match="no complete run"):
        runs.read_manifest(store)
    manifest = runs.commit(store, "catalog", "r1", {"metrics": {"n": 1}}, {"name": "x"})
    assert manifest["kind"] == "catalog" and manifest["completed_at"]
    assert runs.completed(store, "r1") == manifest == runs.read_manifest(store)
    assert store.read_json(layout.LATEST)["run_id"] == "r1"
    runs.commit(store, "train", "t1", {}, {})
    assert runs.latest_run_id(store) == "t1"
    assert runs.latest_run_id(store, "catalog") == "r1"
    assert runs.latest_run_id(store, "compare") is None
    assert sorted(runs.list_runs(store)) == ["r1", "t1"]
    with pytest.raises(ValueError, match="unknown run kind"):
        runs.commit(store, "bogus", "b1", {}, {})


def test_read_items_joins_validation_metrics(tmp_path):
    store = Store(str(tmp_path))
    store.write_table(layout.items_part("r1", "part-00000"), _items(3))
    store.write_table(
        layout.validation_part("r1", "part-00000"),
        pa.table({"id": ["i001"], "passed": [False], "snr_db": [12.5]}),
    )
    runs.commit(store, "catalog", "r1", {}, {})
    df = runs.read_items(store).set_index("id")
    assert df.loc["i001", "snr_db"] == 12.5 and not df.loc["i001", "passed"]
    assert df["snr_db"].isna().sum() == 2
