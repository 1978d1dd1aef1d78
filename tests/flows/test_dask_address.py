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


@pytest.fixture
def external_cluster(prefect_api, tmp_path):
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
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--nthreads",
            "1",
            "--nworkers",
            "1",
            "--no-dashboard",
            "--local-directory",
            str(tmp_path / "dw"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            pids = set(client.run(os.getpid).values())
        yield address, pids
    finally:
        for proc in (worker, sched):
            proc.terminate()
        for proc in (worker, sched):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        time.sleep(0.5)


def test_run_on_existing_scheduler(external_cluster, tmp_path):
    address, worker_pids = external_cluster
    rows = [
        {"id": f"d{i}", "text": f"Order {i} is ready for collection.", "language": "en"}
        for i in range(10)
    ]
    catalog = write_catalog(tmp_path / "c.csv", rows)
    manifest = run_catalog(small_config(catalog, str(tmp_path / "out")), dask_address=address)
    assert {int(w.rsplit(":", 1)[1]) for w in manifest["workers"]} == worker_pids
    items = read_items(str(tmp_path / "out"))
    assert len(items) == 10 and (items["status"] == "ok").all()
