"""The Dask task runner a flow maps its shard tasks through."""

from __future__ import annotations

import os

from prefect_dask import DaskTaskRunner

from audio_synth_core.config import ComputeConfig


def dask_runner(compute: ComputeConfig) -> DaskTaskRunner:
    """An existing scheduler by address, or a LocalCluster sized to this machine."""
    if compute.dask_address:
        return DaskTaskRunner(address=compute.dask_address)
    n_workers = compute.n_workers or max(1, (os.cpu_count() or 1) // compute.threads_per_worker)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n_workers,
            "threads_per_worker": compute.threads_per_worker,
            "processes": True,
            "memory_limit": compute.memory_limit,
            "dashboard_address": None,
        }
    )
