"""The Dask task runner a flow maps its shard tasks through."""

from __future__ import annotations

import contextlib
import os

import dask
from prefect_dask import DaskTaskRunner

from audio_synth_core.config.models import ComputeConfig


def effective_gpus(compute: ComputeConfig, requested: int) -> int:
    """GPUs to annotate tasks with. An existing cluster declares its own GPU workers
    (``dask worker --resources GPU=1``); a LocalCluster declares this machine's GPU only when CUDA
    is there, since an annotated task no worker can take would never be scheduled."""
    if not requested or compute.dask_address:
        return requested
    import torch

    return requested if torch.cuda.is_available() else 0


def dask_runner(compute: ComputeConfig, gpus: int = 0) -> DaskTaskRunner:
    """An existing scheduler by address, or a LocalCluster sized to this machine (its workers
    declaring ``gpus`` GPUs each when asked)."""
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
            **({"resources": {"GPU": gpus}} if gpus else {}),
        }
    )


def gpu_annotation(gpus: int):
    """Dask resource annotation: tasks submitted inside only run on workers declaring ``GPU``."""
    return dask.annotate(resources={"GPU": gpus}) if gpus else contextlib.nullcontext()
