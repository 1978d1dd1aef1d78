"""Garbage collection on a real output (espeak audio, two catalog runs, the second dropping rows):
unreferenced audio and stale temporary files go, everything a kept, incomplete or in-progress run
needs stays, and the bytes freed are reported."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from audio_synth_core.config.models import parse_config
from audio_synth_core.pipeline import gc, lease, planning, runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from tests.conftest import REPO, small_config, write_catalog
from tests.core.pipeline.test_lease import HOLDER

ROWS = [
    {"id": "a", "text": "The first line stays.", "language": "en"},
    {"id": "b", "text": "The second line stays too.", "language": "en"},
    {"id": "c", "text": "The third line is dropped later.", "language": "en"},
    {"id": "d", "text": "So is the fourth one.", "language": "en"},
]


def _catalog_run(tmp_path: Path, out: str, rows: list[dict], espeak, name: str, commit=True):
    """One catalog run through the real lifecycle (no Prefect): plan, generate, commit."""
    catalog = write_catalog(tmp_path / f"{name}.csv", rows)
    cfg = parse_config(small_config(catalog, out) | {"name": name})
    store = Store(out)
    plan = planning.build_plan(cfg, espeak, store)
    for spec in runs.prepare(
        store,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    ):
        generate_shard(spec, store, espeak)
    if commit:
        runs.commit(store, "catalog", plan.run_id, {}, {}, plan.previous_run_id)
    return plan


def _audio_of(store: Store, plan) -> dict[str, str]:
    """catalog id -> audio path of a plan's items."""
    return {
        r["catalog_id"]: layout.audio(r["id"], r["audio_format"]) for r in plan.items.to_pylist()
    }


def _assert_run_reads_back(store: Store, run_id: str) -> None:
    items = runs.read_items(store, run_id)
    for row in items[items["status"] == "ok"].itertuples():
        data = store.read_bytes(layout.audio(row.id, row.audio_format))
        assert hashlib.sha256(data).hexdigest() == row.sha256
        assert sf.info(io.BytesIO(data)).frames == row.num_samples


@pytest.fixture
def two_runs(tmp_path, espeak):
    out = str(tmp_path / "out")
    first = _catalog_run(tmp_path, out, ROWS, espeak, "one")
    second = _catalog_run(tmp_path, out, ROWS[:2], espeak, "two")
    assert second.previous_run_id == first.run_id
    return Store(out), first, second


def test_gc_frees_dropped_items_audio_and_stale_tmp_files_only(two_runs):
    store, first, second = two_runs
    audio = _audio_of(store, first)
    root = Path(store.url)
    stale = root / "audio" / "zz" / f"x.flac.tmp-{'a' * 32}"
    fresh = root / layout.run_dir(second.run_id) / f"manifest.json.tmp-{'b' * 32}"
    for path, age_s in ((stale, 7200), (fresh, 60)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a write")
        os.utime(path, (time.time() - age_s, time.time() - age_s))
    # A validator withheld "b": its file lives under quarantine/, which gc never touches.
    store.move(audio["b"], layout.quarantine(audio["b"]))
    dropped = sum((root / audio[c]).stat().st_size for c in "cd")

    dry = gc.collect_garbage(store, keep_runs=1, dry_run=True)
    assert (dry["audio_files"], dry["audio_bytes"], dry["tmp_files"]) == (2, dropped, 1)
    assert not dry["deleted"] and dry["in_use"] is None
    assert all((root / audio[c]).exists() for c in "cd") and stale.exists()

    # Keeping both runs keeps all audio; the stale temporary file goes, the fresh one stays.
    kept_both = gc.collect_garbage(store, keep_runs=2)
    assert kept_both["kept_runs"] == [second.run_id, first.run_id]
    assert (kept_both["audio_files"], kept_both["tmp_files"]) == (0, 1)
    assert kept_both["bytes"] == len(b"half a write")
    assert not stale.exists() and fresh.exists()

    result = gc.collect_garbage(store, keep_runs=1)
    assert result["deleted"] and result["kept_runs"] == [second.run_id]
    assert (result["audio_files"], result["audio_bytes"], result["bytes"]) == (2, dropped, dropped)
    assert not (root / audio["c"]).exists() and not (root / audio["d"]).exists()
    assert (root / audio["a"]).exists() and (root / layout.quarantine(audio["b"])).exists()
    assert gc.collect_garbage(store, keep_runs=1)["files"] == 0  # nothing left to free
    store.move(layout.quarantine(audio["b"]), audio["b"])  # released from quarantine
    _assert_run_reads_back(store, second.run_id)


def test_gc_keeps_what_an_incomplete_run_already_committed(two_runs, tmp_path, espeak):
    store, first, _ = two_runs
    audio = _audio_of(store, first)
    # A crashed run (its shards written, no manifest) that a re-run resumes without regenerating.
    crashed = _catalog_run(tmp_path, store.url, ROWS[2:], espeak, "three", commit=False)
    assert runs.completed(store, crashed.run_id) is None
    result = gc.collect_garbage(store, keep_runs=1)
    assert crashed.run_id in result["protected_runs"]
    assert result["audio_files"] == 0
    assert all((Path(store.url) / audio[c]).exists() for c in "abcd")


def test_gc_never_runs_while_a_run_holds_the_output(two_runs):
    store, first, _ = two_runs
    audio = _audio_of(store, first)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store.url], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(lease.LeaseError, match="in use: catalog run by pid"):
            gc.collect_garbage(store, keep_runs=1, wait_s=0.5, poll_s=0.1)
        assert gc.collect_garbage(store, dry_run=True)["in_use"].startswith("catalog run by pid")
        assert all((Path(store.url) / audio[c]).exists() for c in "cd")  # nothing deleted
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # Its holder is gone: collection takes over the lease at once.
    assert gc.collect_garbage(store, keep_runs=1, settle_s=0.05)["audio_files"] == 2


def test_keep_runs_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="keep_runs must be at least 1, got 0"):
        gc.plan_gc(Store(str(tmp_path)), keep_runs=0)


def test_gc_command_reports_and_exits_clean(two_runs, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    store, first, _ = two_runs
    sizes = sum((Path(store.url) / _audio_of(store, first)[c]).stat().st_size for c in "cd")
    cli = CliRunner()
    dry = cli.invoke(app, ["gc", store.url, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith(f"would free 2 files, {sizes} bytes")
    with lease.output_lease(store, "validate", settle_s=0.05):
        busy = cli.invoke(app, ["gc", store.url])
    assert busy.exit_code == 1 and "in use: validate run by pid" in busy.output
    done = cli.invoke(app, ["gc", store.url, "--keep-runs", "1"])
    assert done.exit_code == 0 and done.output.startswith(f"freed 2 files, {sizes} bytes")
    missing = cli.invoke(app, ["gc", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no output at" in missing.output
    assert not (tmp_path / "nowhere").exists()


def test_gc_on_s3(s3_bucket, tmp_path, espeak):
    out = f"s3://{s3_bucket}/out"
    first = _catalog_run(tmp_path, out, ROWS, espeak, "one")
    second = _catalog_run(tmp_path, out, ROWS[:2], espeak, "two")
    store = Store(out)
    audio = _audio_of(store, first)
    result = gc.collect_garbage(store, keep_runs=1)
    assert (result["audio_files"], result["audio_kept"]) == (2, 2) and result["bytes"] > 0
    assert [store.exists(audio[c]) for c in "abcd"] == [True, True, False, False]
    assert not store.exists(layout.LEASE)
    _assert_run_reads_back(store, second.run_id)
