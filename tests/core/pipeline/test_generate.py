"""One shard generated on a tmp_path store with the real espeak engine."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import soundfile as sf

from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.store import layout, schema
from tests.core.pipeline.conftest import prepare


def test_generate_shard_writes_decodable_audio_and_commits_metadata(store, plan, espeak):
    (spec,) = prepare(store, plan)
    summary = generate_shard(spec, store, espeak, batch_size=2)
    assert (summary.n_items, summary.n_ok, summary.n_failed, summary.n_generated) == (4, 2, 2, 2)
    rows = store.read_table(layout.items_part(plan.run_id, spec.name)).to_pylist()
    for row in rows:
        if row["status"] != schema.STATUS_OK:
            assert row["error"] and row["audio_uri"] is None
            continue
        data = store.read_bytes(layout.audio(row["id"], "flac"))
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        audio, rate = sf.read(row["audio_uri"])
        assert rate == row["sample_rate_hz"] == 22050 and len(audio) == row["num_samples"]
        assert row["duration_s"] > 0.3 and -40 < row["rms_dbfs"] < 0
    assert prepare(store, plan) == []  # committed: nothing pending


def test_generate_shard_is_idempotent_and_regenerates_lost_audio(store, plan, espeak):
    (spec,) = prepare(store, plan)
    generate_shard(spec, store, espeak)
    again = generate_shard(spec, store, espeak)
    assert again.skipped and again.n_generated == 0
    # An unchanged item whose audio vanished is generated again, not trusted blindly.
    first = next(r for r in plan.items.to_pylist() if r["status"] == "pending")
    done = store.read_table(layout.items_part(plan.run_id, spec.name)).to_pylist()
    ok = next(r for r in done if r["id"] == first["id"])
    store.fs.rm(store.path(layout.audio(ok["id"], "flac")))
    carried = {**ok, "change": schema.CHANGE_UNCHANGED}
    rerun = runs.ShardSpec("rerun", 0, 1)
    store.write_table(
        layout.plan_part("rerun", rerun.name),
        pa.Table.from_pylist([carried], schema=schema.ITEM_SCHEMA),
    )
    summary = generate_shard(rerun, store, espeak)
    assert summary.n_generated == 1 and store.exists(layout.audio(ok["id"], "flac"))
