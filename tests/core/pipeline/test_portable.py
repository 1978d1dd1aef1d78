"""Portable outputs: audio is referenced relative to the output root, so a moved output still
finds, validates, quarantines and re-uses its own audio. Real espeak audio on tmp_path stores."""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import soundfile as sf

from audio_synth_core.config.models import parse_config
from audio_synth_core.pipeline import planning, runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.pipeline.validate import validate_shard
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.quality import QualityValidator
from tests.conftest import small_config, write_catalog
from tests.core.pipeline.conftest import ROWS, prepare


class QuarantineAll(QualityValidator):
    """The quality validator with a withholding rule that fires on every clip."""

    def quarantine(self, metrics: Mapping[str, Any]) -> bool:
        return True


def _commit_and_move(store: Store, plan, tmp_path) -> Store:
    runs.commit(store, "catalog", plan.run_id, {}, {})
    moved = tmp_path / "moved"
    shutil.move(store.url, moved)
    return Store(str(moved))


def test_generated_rows_hold_audio_path_relative_to_the_root(generated, store):
    _, rows = generated
    ok = [r for r in rows if r["status"] == schema.STATUS_OK]
    assert len(ok) == 2
    for row in ok:
        assert row["audio_path"] == layout.audio(row["id"], "flac")
        assert row["audio_uri"] == store.uri(row["audio_path"])  # absolute, as written
    assert all(r["audio_path"] is None for r in rows if r["status"] != schema.STATUS_OK)


def test_read_items_resolves_audio_under_the_root_it_was_opened_at(
    generated, store, plan, tmp_path
):
    old_root = store.url
    moved = _commit_and_move(store, plan, tmp_path)
    df = runs.read_items(moved)
    # The dtype stays as read (pandas 3: "str"): the data contract checks it.
    assert df["audio_uri"].dtype == df["audio_path"].dtype == df["text"].dtype
    ok = df[df["status"] == schema.STATUS_OK]
    assert len(ok) == 2
    for row in ok.itertuples():
        assert row.audio_uri == f"{moved.url}/{row.audio_path}"
        assert not row.audio_uri.startswith(old_root + "/")
        with open(row.audio_uri, "rb") as fh:
            data = fh.read()
        assert hashlib.sha256(data).hexdigest() == row.sha256
        audio, rate = sf.read(io.BytesIO(data))
        assert rate == row.sample_rate_hz and len(audio) == row.num_samples
    assert df.loc[df["status"] != schema.STATUS_OK, "audio_uri"].isna().all()


def test_validate_shard_reads_and_quarantines_under_a_moved_root(generated, store, plan, tmp_path):
    spec, rows = generated
    moved = _commit_and_move(store, plan, tmp_path)
    summary = validate_shard(spec, moved, [QuarantineAll()])
    table = moved.read_table(layout.validation_part(plan.run_id, spec.name)).to_pylist()
    ok_ids = {r["id"] for r in rows if r["status"] == schema.STATUS_OK}
    measured = [r for r in table if r["id"] in ok_ids]
    # Read from the moved root (no "missing_audio"), measured, and moved under its quarantine/.
    assert all(r["failed_checks"] != "missing_audio" and r["duration_s"] > 0.3 for r in measured)
    assert summary.n_quarantined == 2
    for item_id in ok_ids:
        rel = layout.audio(item_id, "flac")
        assert not moved.exists(rel) and moved.exists(layout.quarantine(rel))


def test_rerun_on_a_moved_output_reuses_its_audio(generated, store, plan, tmp_path, espeak):
    _, first_rows = generated
    moved = _commit_and_move(store, plan, tmp_path)
    extra = [*ROWS, {"id": "e5", "text": "One more sentence.", "language": "en"}]
    catalog = write_catalog(tmp_path / "c2.csv", extra)
    cfg = parse_config(small_config(catalog, moved.url, sharding={"items_per_shard": 8}))
    second = planning.build_plan(cfg, espeak, moved)
    assert second.previous_run_id == plan.run_id
    (spec,) = prepare(moved, second)
    summary = generate_shard(spec, moved, espeak)
    assert summary.n_generated == 1  # only the new row: the moved audio is found and re-used
    table = moved.read_table(layout.items_part(second.run_id, spec.name))
    rows = {r["id"]: r for r in table.to_pylist()}
    for old in (r for r in first_rows if r["status"] == schema.STATUS_OK):
        row = rows[old["id"]]
        assert row["change"] == schema.CHANGE_UNCHANGED and row["sha256"] == old["sha256"]
        assert row["audio_uri"] == moved.uri(old["audio_path"])  # points at the new root


def test_outputs_without_audio_path_still_read(tmp_path):
    """An output written before schema version 2: audio_uri is used as written."""
    store = Store(str(tmp_path / "v1"))
    audio_rel = layout.audio("ab" * 10, "wav")
    store.write_bytes(audio_rel, b"RIFF")
    v1 = pa.schema([f for f in schema.ITEM_SCHEMA if f.name != "audio_path"])
    row = {n: None for n in v1.names}
    row.update(
        id="ab" * 10,
        catalog_id="c",
        generator="espeak",
        status=schema.STATUS_OK,
        audio_uri=store.uri(audio_rel),
    )
    store.write_table(layout.items_part("r1", "part-00000"), pa.Table.from_pylist([row], v1))
    runs.commit(store, "catalog", "r1", {}, {})
    df = runs.read_items(store)
    assert "audio_path" not in df.columns
    assert df.loc[0, "audio_uri"] == store.uri(audio_rel)
    assert runs.audio_location(store, df.iloc[0].to_dict()) == store.uri(audio_rel)


def test_a_version_1_output_is_carried_into_version_2_without_regeneration(
    generated, store, catalog_cfg, espeak
):
    """Re-running a config over an output of schema version 1 (a run id of its own, no
    audio_path) re-uses every audio file and records where it is, relative to the root."""
    spec, rows = generated
    v1 = pa.schema([f for f in schema.ITEM_SCHEMA if f.name != "audio_path"])
    old_rows = [{k: v for k, v in r.items() if k != "audio_path"} for r in rows]
    store.write_table(layout.items_part("test-v1", spec.name), pa.Table.from_pylist(old_rows, v1))
    runs.commit(store, "catalog", "test-v1", {}, {})
    plan = planning.build_plan(catalog_cfg, espeak, store)
    assert plan.previous_run_id == "test-v1"
    store.fs.rm(store.path(layout.run_dir(plan.run_id)), recursive=True)  # as if never run
    (again,) = prepare(store, plan)
    assert generate_shard(again, store, espeak).n_generated == 0
    table = store.read_table(layout.items_part(plan.run_id, spec.name)).to_pylist()
    ok = [r for r in table if r["status"] == schema.STATUS_OK]
    assert len(ok) == 2
    assert all(r["audio_path"] == layout.audio(r["id"], "flac") for r in ok)
