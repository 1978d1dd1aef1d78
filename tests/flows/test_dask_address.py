"""--dask-address: the flow runs its shards on an existing scheduler's workers (real processes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from distributed import Client

from flows.api import read_items, run_catalog
from tests.conftest import small_config, write_catalog

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_cluster(tmp_path, worker_resources: list[str | None]):
    """A scheduler and one worker process per entry (with ``--resources`` when given)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ}
    sched = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = []
    for i, resources in enumerate(worker_resources):
        name = f"gpu-{i}" if resources else f"cpu-{i}"
        extra = ["--resources", resources] if resources else []
        cmd = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1"]
        cmd += ["--no-dashboard", "--name", name, "--local-directory", str(tmp_path / name), *extra]
        workers.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(len(workers), timeout=60)
            pids = client.run(os.getpid)
            names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
        yield address, {names[a]: pid for a, pid in pids.items()}
    finally:
        for proc in (*workers, sched):
            proc.terminate()
        for proc in (*workers, sched):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        time.sleep(0.5)


@pytest.fixture
def external_cluster(prefect_api, tmp_path):
    yield from start_cluster(tmp_path, [None])


@pytest.fixture
def gpu_cluster(prefect_api, tmp_path):
    yield from start_cluster(tmp_path, ["GPU=1", None])


def test_run_on_existing_scheduler(external_cluster, tmp_path):
    address, pids = external_cluster
    worker_pids = set(pids.values())
    rows = [
        {"id": f"d{i}", "text": f"Order {i} is ready for collection.", "language": "en"}
        for i in range(10)
    ]
    catalog = write_catalog(tmp_path / "c.csv", rows)
    manifest = run_catalog(small_config(catalog, str(tmp_path / "out")), dask_address=address)
    assert {int(w.rsplit(":", 1)[1]) for w in manifest["workers"]} == worker_pids
    items = read_items(str(tmp_path / "out"))
    assert len(items) == 10 and (items["status"] == "ok").all()


def test_gpu_tasks_land_only_on_gpu_workers(gpu_cluster, tmp_path):
    address, pids = gpu_cluster
    rows = [
        {"id": f"g{i}", "text": f"Parcel {i} left the depot this morning.", "language": "en"}
        for i in range(16)
    ]
    cfg = small_config(
        write_catalog(tmp_path / "c.csv", rows), str(tmp_path / "out"), compute={"gpu_per_task": 1}
    )
    manifest = run_catalog(cfg, dask_address=address)
    # Four generation shards, all on the worker that declares GPU=1; validation ran separately.
    assert {int(w.rsplit(":", 1)[1]) for w in manifest["workers"]} == {pids["gpu-0"]}
    items = read_items(str(tmp_path / "out"))
    assert len(items) == 16 and items["passed"].all()
