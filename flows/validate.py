"""The validate flow: measure an existing dataset (ours or anyone's), report, and gate it."""

from __future__ import annotations

import json
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import unmapped

from audio_synth_core.config.models import ComputeConfig, ValidateConfig, load_validate_config
from audio_synth_core.config.secrets import redact, scrub
from audio_synth_core.errors import AudioSynthError
from audio_synth_core.inputs.datasets import discover
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.lease import output_lease
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.store import ids, layout
from audio_synth_core.store.storage import Store
from flows import tracking
from flows.compute import dask_runner
from flows.credentials import Sealed, restore, seal
from flows.outcome import GateFailed, assess_run, gate_message, log_assessment
from flows.prepare import open_store, resolve, validator_specs, with_compute
from flows.progress import gather
from tasks.validate import validate_shard_task


@flow(name="validate-shards")
def validate_shards(
    specs: list[ShardSpec], sealed_store: Sealed, sealed_cfg: Sealed, validators: str
) -> dict:
    # Sealed: Prefect stores only the redacted views of the store and the config.
    store: Store = sealed_store.value
    cfg: ValidateConfig = sealed_cfg.value
    futures = validate_shard_task.with_options(
        retries=cfg.compute.retries, retry_delay_seconds=cfg.compute.retry_delay_s
    ).map(specs, unmapped(store), validators, unmapped(cfg.input_storage_options))
    summaries, errors = gather(futures, "validate", sum(s.n_items for s in specs))
    return {"summaries": summaries, "errors": errors}


def resolve_validate_config(config: str | dict[str, Any] | ValidateConfig | None) -> ValidateConfig:
    return resolve(config or {}, ValidateConfig, load_validate_config)


@flow(name="validate-dataset")
def validate_flow(
    input_url: str,
    output: str,
    config: str | dict[str, Any] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Validate every audio file under ``input_url``; metrics, reports and manifest go to ``output``."""
    logger = get_run_logger()
    # Parameters handed over by flows.api are redacted copies: restore the real ones in-process.
    input_url, output = restore(input_url), restore(output)
    cfg = resolve_validate_config(restore(config))
    compute = with_compute(cfg.compute, dask_address, workers)
    validators = validator_specs(cfg.validation) or json.dumps([])
    store = open_store(output, cfg.output_storage_options)
    with output_lease(store, "validate", on_wait=logger.warning):
        return _validate_run(input_url, output, cfg, compute, validators, store, logger)


def _validate_run(
    input_url: str,
    output: str,
    cfg: ValidateConfig,
    compute: ComputeConfig,
    validators: str,
    store: Store,
    logger: Any,
) -> dict[str, Any]:
    """The run body, under the output's lease: one run per output at a time (pipeline/lease.py)."""
    items = discover(input_url, cfg.input_storage_options)
    digest = ids.stream_digest(items.column("id").to_pylist(), validators)
    run_id = ids.run_id(cfg.name, digest)
    done = runs.completed(store, run_id)
    if done is not None:
        logger.warning("validation run %s is already complete under %s", run_id, store.url)
        return done
    shards = runs.make_shards(run_id, items.num_rows, cfg.sharding.items_per_shard)
    # Nothing is generated: the discovered items are the run's items, and a shard is done when
    # its validation part exists.
    pending = runs.prepare(
        store,
        items,
        shards,
        layout.items_dir(run_id),
        lambda s: layout.validation_part(s.run_id, s.name),
    )
    logger.warning("validation run %s: %d items in %d shards", run_id, items.num_rows, len(shards))
    start = time.perf_counter()
    result = validate_shards.with_options(task_runner=dask_runner(compute))(
        pending, seal(store), seal(cfg), validators
    )
    wall_s = time.perf_counter() - start
    if result["errors"]:
        raise AudioSynthError(
            f"{len(result['errors'])} of {len(pending)} shards failed after retries "
            f"(first: {result['errors'][0]}); re-run the same command to resume"
        )
    df, assessment, urls = assess_run(store, run_id, cfg.validation, cfg.input_storage_options)
    audio_s = float(df["duration_s"].fillna(0).sum()) if "duration_s" in df.columns else 0.0
    metrics = {
        "items": len(df),
        "validation_wall_s": wall_s,
        "audio_s_per_wall_s": audio_s / wall_s if wall_s else None,
    }
    uri = tracking.tracking_uri(cfg.tracking.mlflow_tracking_uri, store)
    with tracking.start_run(
        uri,
        cfg.tracking.experiment,
        run_id,
        {"input": input_url, "prefect.flow_run_id": str(flow_run.id or "")},
    ) as run:
        tracking.log_config({"input": input_url, "output": output, **cfg.model_dump(mode="json")})
        tracking.log_metrics(metrics)
        log_assessment(assessment, store, urls)
        mlflow_run_id = run.info.run_id
    summary = {
        "input": input_url,
        "n_shards": len(shards),
        "items": f"{layout.items_dir(run_id)}/",
        "metrics": metrics,
        "assessment": assessment.summary,
        "gate": {"passed": assessment.gate_passed, "reasons": assessment.gate_reasons},
        "reports": urls,
        "mlflow_run_id": mlflow_run_id,
    }
    manifest = runs.commit(
        store, "validate", run_id, scrub(summary), redact(cfg.model_dump(mode="json"))
    )
    if not assessment.gate_passed:
        raise GateFailed(gate_message(run_id, assessment, urls), manifest)
    return manifest
