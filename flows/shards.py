"""Generating planned shards over Dask: the one step every generating flow (catalog, audiobook,
dataset) shares after ``runs.prepare`` and before its own assembly, filtering or commit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from prefect import flow
from prefect.utilities.annotations import unmapped

from audio_synth_core.config.models import ComputeConfig, GeneratorConfig
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.provenance.c2pa import C2paMaterial
from audio_synth_core.store.storage import Store
from audio_synth_core.watermark import WatermarkSettings
from flows import tracking
from flows.compute import dask_runner, effective_gpus, gpu_annotation
from flows.credentials import Sealed, seal
from flows.progress import gather
from tasks.generate import generate_shard_task
from tasks.validate import validate_shard_task


@dataclass(frozen=True)
class ShardJob:
    """What every shard of a run is generated with (sealed: generator params may hold secrets)."""

    generator: GeneratorConfig
    batch_size: int = 32
    retries: int = 2
    retry_delay_s: float = 2.0
    validators: str | None = None  # validator specs as JSON: validate each shard as it is made
    watermark: WatermarkSettings | None = None  # mark every clip (the key travels sealed)
    c2pa: C2paMaterial | None = None  # a C2PA manifest on every file (its key travels sealed)


@flow(name="generate-shards")
def generate_shards(
    specs: list[ShardSpec], sealed_store: Sealed, sealed_job: Sealed, gpus: int = 0
) -> dict[str, Any]:
    """Map the generation task over shards through the configured Dask runner.

    With GPUs the generation tasks carry a GPU resource annotation (they only run on GPU workers)
    and validation, CPU-only, is mapped separately so it can run anywhere. Store and job arrive
    sealed: Prefect stores only their redacted views.
    """
    store: Store = sealed_store.value
    job: ShardJob = sealed_job.value
    params = json.dumps(job.generator.params, sort_keys=True)
    options = {"retries": job.retries, "retry_delay_seconds": job.retry_delay_s}
    with gpu_annotation(gpus):
        futures = generate_shard_task.with_options(**options).map(
            specs,
            unmapped(store),
            job.generator.name,
            params,
            job.batch_size,
            None if gpus else job.validators,
            unmapped(job.watermark),
            unmapped(job.c2pa),
        )
    items = sum(s.n_items for s in specs)
    summaries, errors = gather(futures, "generate", items)
    if gpus and job.validators and not errors:
        checked, errors = gather(
            validate_shard_task.with_options(**options).map(
                specs, unmapped(store), job.validators, unmapped({})
            ),
            "validate",
            items,
        )
        by_shard = {c["shard"]: c for c in checked}
        for s in summaries:
            s["validation"] = by_shard.get(s["shard"])
    return {"summaries": summaries, "errors": errors}


def run_shards(
    specs: list[ShardSpec],
    store: Store,
    job: ShardJob,
    compute: ComputeConfig,
    gpu_per_task: int = 0,
    logger: Any = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Generate ``specs`` on the run's Dask cluster (LocalCluster or ``compute.dask_address``);
    returns ``{"summaries": [...], "errors": [...]}`` (small dicts, never audio). With
    ``tracking_uri`` the run's MLflow store is opened meanwhile (``tracking.open_in_background``)."""
    if tracking_uri is not None:
        tracking.open_in_background(tracking_uri)
    gpus = effective_gpus(compute, gpu_per_task)
    if gpu_per_task and not gpus and logger is not None:
        logger.warning("gpu_per_task is set but this LocalCluster has no GPU: running on CPU")
    runner = dask_runner(compute, gpus)
    return generate_shards.with_options(task_runner=runner)(specs, seal(store), seal(job), gpus)
