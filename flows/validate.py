"""The validate flow: measure an existing dataset (ours or anyone's), report, and gate it."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import unmapped

from audio_synth_core.config.models import ValidateConfig, load_validate_config
from audio_synth_core.inputs.datasets import discover
from audio_synth_core.pipeline import planning
from audio_synth_core.pipeline.planning import ShardSpec
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from flows import tracking
from flows.catalog import validators_json
from flows.compute import dask_runner
from flows.progress import gather
from flows.reporting import GateFailed, assess_run, gate_message, log_assessment
from tasks.validate import validate_shard_task


@flow(name="validate-shards")
def validate_shards(
    specs: list[ShardSpec], store: Store, cfg: ValidateConfig, validators: str
) -> dict:
    futures = validate_shard_task.with_options(
        retries=cfg.compute.retries, retry_delay_seconds=cfg.compute.retry_delay_s
    ).map(specs, unmapped(store), validators, unmapped(cfg.input_storage_options))
    summaries, errors = gather(futures, "validate", sum(s.n_items for s in specs))
    return {"summaries": summaries, "errors": errors}


def resolve_validate_config(config: str | dict[str, Any] | ValidateConfig | None) -> ValidateConfig:
    if isinstance(config, ValidateConfig):
        return config
    if isinstance(config, dict):
        return load_validate_config(None, config)
    return load_validate_config(config)


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
    cfg = resolve_validate_config(config)
    compute = cfg.compute.model_copy(
        update={k: v for k, v in {"dask_address": dask_address, "n_workers": workers}.items() if v}
    )
    validators = validators_json(cfg.validation) or json.dumps([])
    store = Store(output, cfg.output_storage_options)
    store.check_writable()
    items = discover(input_url, cfg.input_storage_options)
    digest = hashlib.sha256("".join(items.column("id").to_pylist()).encode() + validators.encode())
    run_id = f"{cfg.name}-{digest.hexdigest()[:12]}"
    shards = planning.make_shards(run_id, items.num_rows, cfg.sharding.items_per_shard)
    if store.exists(layout.manifest(run_id)):
        logger.warning("validation run %s is already complete under %s", run_id, store.url)
        return store.read_json(layout.manifest(run_id))
    offset, done = 0, set(store.list(layout.items_dir(run_id)))
    for spec in shards:
        if f"{spec.name}.parquet" not in done:
            store.write_table(
                layout.items_part(run_id, spec.name), items.slice(offset, spec.n_items)
            )
        offset += spec.n_items
    finished = set(store.list(layout.validation_dir(run_id)))
    pending = [s for s in shards if f"{s.name}.parquet" not in finished]
    logger.warning("validation run %s: %d items in %d shards", run_id, items.num_rows, len(shards))
    start = time.perf_counter()
    result = validate_shards.with_options(task_runner=dask_runner(compute))(
        pending, store, cfg, validators
    )
    wall_s = time.perf_counter() - start
    if result["errors"]:
        raise RuntimeError(
            f"{len(result['errors'])} shards failed (first: {result['errors'][0]}); re-run to resume"
        )
    df, assessment, urls = assess_run(store, run_id, cfg.validation)
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
    manifest = {
        "run_id": run_id,
        "input": input_url,
        "metrics": metrics,
        "assessment": assessment.summary,
        "gate": {"passed": assessment.gate_passed, "reasons": assessment.gate_reasons},
        "reports": urls,
        "mlflow_run_id": mlflow_run_id,
        "config": cfg.model_dump(mode="json"),
    }
    store.write_json(layout.manifest(run_id), manifest)
    if not assessment.gate_passed:
        raise GateFailed(gate_message(run_id, assessment, urls), manifest)
    return manifest
