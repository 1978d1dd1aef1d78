"""The Dask task runner a flow maps its shard tasks through."""

from __future__ import annotations

import contextlib
import os

import dask
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


def gpu_annotation(gpus: int):
    """Dask resource annotation: tasks submitted inside only run on workers declaring ``GPU``."""
    return dask.annotate(resources={"GPU": gpus}) if gpus else contextlib.nullcontext()
