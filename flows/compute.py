"""The Dask task runner a flow maps its shard tasks through."""

from __future__ import annotations

import contextlib
import os

import dask
from distributed import LocalCluster
from prefect_dask import DaskTaskRunner

from audio_synth_core.config.models import ComputeConfig

# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, and setting any malloc threshold
# switches off glibc's dynamic mmap threshold: every array over 128 KiB (a clip, its FLAC bytes,
# its level sums) is then a fresh mmap whose pages fault in on first touch, 3 of a 16 ms item on
# espeak. Serving blocks up to 32 MiB from the heap and trimming once 64 MiB lie free keeps the
# speed and still hands memory back to the OS, which is what Dask's setting is for.
WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": 32 << 20, "MALLOC_TRIM_THRESHOLD_": 64 << 20}
_DASK_DEFAULT_TRIM = 65536
_PRE_SPAWN = "distributed.nanny.pre-spawn-environ"


def worker_environ() -> dict:
    """The nanny's pre-spawn environment for our LocalCluster's workers: Dask's, with
    ``WORKER_MALLOC`` in place of its malloc default (a user's own malloc settings win)."""
    environ = dict(dask.config.get(_PRE_SPAWN, default={}) or {})
    user_set = "MALLOC_MMAP_THRESHOLD_" in environ or environ.get(
        "MALLOC_TRIM_THRESHOLD_", _DASK_DEFAULT_TRIM
    ) not in (_DASK_DEFAULT_TRIM, str(_DASK_DEFAULT_TRIM))
    return environ if user_set else {**environ, **WORKER_MALLOC}


def local_cluster(**kwargs) -> LocalCluster:
    """A LocalCluster whose worker processes start with ``worker_environ()`` (read by each nanny
    when it is made, so the setting covers restarted workers too)."""
    with dask.config.set({_PRE_SPAWN: worker_environ()}):
        return LocalCluster(**kwargs)


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
        cluster_class=local_cluster,
        cluster_kwargs={
            "n_workers": n_workers,
            "threads_per_worker": compute.threads_per_worker,
            "processes": True,
            "memory_limit": compute.memory_limit,
            "dashboard_address": None,
            **({"resources": {"GPU": gpus}} if gpus else {}),
        },
    )


def gpu_annotation(gpus: int):
    """Dask resource annotation: tasks submitted inside only run on workers declaring ``GPU``."""
    return dask.annotate(resources={"GPU": gpus}) if gpus else contextlib.nullcontext()
