"""A dying worker and a dying flow: SIGKILL mid-run, and the output is still exactly the output an
uninterrupted run makes (every item once, the same ids and bytes, every file decodes).

Each kill lands mid-run deterministically: it waits until a few shards' items parts exist and checks
that others were still missing when the signal was sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import soundfile as sf

from audio_synth_core.store import layout
from flows.api import read_items
from tests.conftest import REPO, small_config, write_catalog
from tests.flows.test_dask_address import start_cluster
from tests.flows.test_s3_faults import committed_run

pytestmark = pytest.mark.slow

N_ITEMS, PER_SHARD = 160, 4
N_SHARDS = N_ITEMS // PER_SHARD
KILL_AFTER = 5  # items parts committed before the kill


def _config(tmp: Path, out: Path, **compute) -> dict:
    rows = [
        {"id": f"w{i}", "text": f"Note {i}: the ferry leaves at nine.", "language": "en"}
        for i in range(N_ITEMS)
    ]
    catalog = write_catalog(tmp / "catalog.csv", rows)
    return small_config(
        catalog,
        str(out),
        compute={"n_workers": 2, **compute},
        sharding={"items_per_shard": PER_SHARD, "batch_size": PER_SHARD},
    )


def _parts(out: Path) -> list[Path]:
    return list(out.glob("runs/*/items/*.parquet"))


def _wait_for_parts(out: Path, n: int, timeout_s: float = 300) -> int:
    deadline = time.monotonic() + timeout_s
    while len(_parts(out)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(_parts(out))


def _result(out: Path) -> dict[str, tuple[str, bytes]]:
    """id -> (sha256, audio bytes) of the last run under ``out``, checking that each item is there
    once, ok, and that its file hashes to its sha256 and decodes to its sample count."""
    items = read_items(str(out))
    assert len(items) == N_ITEMS and items["id"].is_unique and (items["status"] == "ok").all()
    result = {}
    for row in items.itertuples():
        data = (out / layout.audio(row.id, row.audio_format)).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256, row.id
        audio, _ = sf.read(out / layout.audio(row.id, row.audio_format))
        assert len(audio) == row.num_samples, row.id
        result[row.id] = (row.sha256, data)
    return result


@pytest.fixture(scope="module")
def reference(prefect_api, tmp_path_factory) -> dict[str, tuple[str, bytes]]:
    """What an uninterrupted run of the same config makes."""
    tmp = tmp_path_factory.mktemp("reference")
    committed_run(_config(tmp, tmp / "out"))
    return _result(tmp / "out")


def _kill_when_mid_run(out: Path, pid_of, killed: dict) -> threading.Thread:
    """A thread that SIGKILLs the process ``pid_of()`` names once KILL_AFTER parts exist."""

    def kill() -> None:
        killed["parts"] = _wait_for_parts(out, KILL_AFTER)
        pid = pid_of()
        os.kill(pid, signal.SIGKILL)
        killed["pid"] = pid

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _local_cluster_worker() -> int:
    """A LocalCluster worker process: a child of this process started by multiprocessing."""
    for child in psutil.Process().children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                return child.pid
        except psutil.Error:  # exited (or a zombie) since the listing
            continue
    raise AssertionError("no LocalCluster worker process found")


def _assert_same(result: dict, reference: dict, manifest: dict) -> None:
    assert result.keys() == reference.keys()
    assert {k: v[0] for k, v in result.items()} == {k: v[0] for k, v in reference.items()}
    assert all(result[k][1] == reference[k][1] for k in reference)
    metrics = manifest["metrics"]
    print(f"items generated and counted: {metrics['items_generated']} of {N_ITEMS}")
    assert metrics["items_total"] == metrics["items_ok"] == N_ITEMS
    assert metrics["items_generated"] <= N_ITEMS  # nothing counted twice


def test_killed_local_cluster_worker(reference, tmp_path):
    out = tmp_path / "out"
    killed: dict = {}
    thread = _kill_when_mid_run(out, _local_cluster_worker, killed)
    manifest = committed_run(_config(tmp_path, out))
    thread.join(timeout=10)
    print(f"killed worker {killed.get('pid')} with {killed.get('parts')} of {N_SHARDS} shards done")
    assert "pid" in killed and not psutil.pid_exists(killed["pid"])
    assert KILL_AFTER <= killed["parts"] < N_SHARDS, "the kill must land mid-run"
    _assert_same(_result(out), reference, manifest)


def test_killed_external_dask_worker(reference, prefect_api, tmp_path):
    cluster = start_cluster(tmp_path, [None, None])  # ``dask scheduler`` + 2 ``dask worker``
    address, pids = next(cluster)
    try:
        out = tmp_path / "out"
        killed: dict = {}
        thread = _kill_when_mid_run(out, lambda: pids["cpu-0"], killed)
        manifest = committed_run(_config(tmp_path, out), dask_address=address)
        thread.join(timeout=10)
    finally:
        cluster.close()  # stops the scheduler and workers
    print(f"killed worker {killed.get('pid')} with {killed.get('parts')} of {N_SHARDS} shards done")
    assert killed.get("pid") == pids["cpu-0"]
    assert KILL_AFTER <= killed["parts"] < N_SHARDS, "the kill must land mid-run"
    _assert_same(_result(out), reference, manifest)


def test_killed_flow_process_is_resumed_to_the_same_result(reference, prefect_api, tmp_path):
    out = tmp_path / "out"
    cfg = _config(tmp_path, out)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(json.dumps(cfg))  # JSON is YAML
    proc = subprocess.Popen(
        [sys.executable, "-c", "from flows.cli import app; app()", "run", str(cfg_path)],
        cwd=REPO,
        env={**os.environ},  # the session's Prefect API
        start_new_session=True,  # the flow process and its LocalCluster workers: one group
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = _wait_for_parts(out, KILL_AFTER)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(_parts(out))
    print(f"killed the flow process with {done} of {N_SHARDS} shards done")
    assert parts >= KILL_AFTER and done < N_SHARDS, "the kill must land mid-run"
    assert not list(out.glob("runs/*/manifest.json"))
    manifest = committed_run(cfg)
    assert manifest["metrics"]["shards_run"] == N_SHARDS - done  # committed shards are not redone
    _assert_same(_result(out), reference, manifest)
