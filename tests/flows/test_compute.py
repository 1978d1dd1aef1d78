"""The LocalCluster a flow starts: its workers' malloc settings (flows/compute.py)."""

from __future__ import annotations

import os

import dask
from distributed import Client

from flows.compute import WORKER_MALLOC, local_cluster, worker_environ

_KEYS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")


def _environ() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in _KEYS}


def test_workers_start_with_heap_friendly_malloc_and_dasks_other_settings():
    with (
        local_cluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        Client(c) as client,
    ):
        (seen,) = client.run(_environ).values()
    assert seen["MALLOC_MMAP_THRESHOLD_"] == str(WORKER_MALLOC["MALLOC_MMAP_THRESHOLD_"])
    assert seen["MALLOC_TRIM_THRESHOLD_"] == str(WORKER_MALLOC["MALLOC_TRIM_THRESHOLD_"])
    assert seen["OMP_NUM_THREADS"] == "1"  # Dask's own pre-spawn settings are kept
    # Only the cluster's nannies saw the change: the process's Dask config is as it was.
    assert dask.config.get("distributed.nanny.pre-spawn-environ")["MALLOC_TRIM_THRESHOLD_"] == 65536


def test_a_users_own_malloc_setting_wins():
    key = "distributed.nanny.pre-spawn-environ"
    with dask.config.set({key: {"MALLOC_TRIM_THRESHOLD_": 1 << 20, "OMP_NUM_THREADS": 2}}):
        assert worker_environ() == {"MALLOC_TRIM_THRESHOLD_": 1 << 20, "OMP_NUM_THREADS": 2}
    with dask.config.set({key: {"MALLOC_MMAP_THRESHOLD_": 4096}}):
        assert worker_environ() == {"MALLOC_MMAP_THRESHOLD_": 4096}
