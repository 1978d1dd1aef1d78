"""One shard validated on a tmp_path store: metrics, checks, and per-item failures."""

from __future__ import annotations

from audio_synth_core.pipeline.validate import validate_shard
from audio_synth_core.store import layout
from audio_synth_core.validators.base import build_validator


def test_validate_shard_records_metrics_and_every_kind_of_failure(store, plan, generated):
    spec, rows = generated
    ok = [r for r in rows if r["status"] == "ok"]
    # One file goes missing, one is corrupted after generation.
    store.fs.rm(store.path(layout.audio(ok[0]["id"], "flac")))
    store.write_bytes(layout.audio(ok[1]["id"], "flac"), b"not audio at all")
    quality = build_validator("quality", {"min_duration_s": 0.2})
    summary = validate_shard(spec, store, [quality])
    assert summary.n_items == 4 and summary.n_passed == 0
    table = store.read_table(layout.validation_part(plan.run_id, spec.name))
    by_id = {r["id"]: r for r in table.to_pylist()}
    assert by_id[ok[0]["id"]]["failed_checks"] == "missing_audio"
    assert by_id[ok[1]["id"]]["failed_checks"] == "decode"
    failed = [r for r in rows if r["status"] != "ok"]
    assert all(by_id[r["id"]]["failed_checks"] == "generation" for r in failed)
    assert "snr_db" in table.column_names
    assert validate_shard(spec, store, [quality]).skipped


def test_validate_shard_measures_good_speech(store, plan, generated):
    spec, _ = generated
    validate_shard(spec, store, [build_validator("quality", {"min_duration_s": 0.2})])
    df = store.read_table(layout.validation_part(plan.run_id, spec.name)).to_pandas()
    good = df[df["failed_checks"] != "generation"]
    assert len(good) == 2 and good["passed"].all()
    assert (good["snr_db"] > 20).all() and (good["duration_s"] > 0.3).all()
