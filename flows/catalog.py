"""The catalog generation flow: plan -> map one task per shard over Dask -> commit -> MLflow."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from audio_synth_core.config.models import RunConfig, load_config
from audio_synth_core.config.secrets import redact, scrub
from audio_synth_core.errors import AudioSynthError
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import changes, planning, runs, stats
from audio_synth_core.pipeline.lease import output_lease
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent
from audio_synth_core.watermark.lookup import ITEM_COLUMNS
from flows import tracking
from flows.credentials import restore
from flows.outcome import GateFailed, assess_run, gate_message, log_assessment
from flows.prepare import open_store, resolve_run, validator_specs
from flows.revocation import record, withhold_revoked
from flows.shards import ShardJob, run_shards
from flows.signing import c2pa_material, item_marks, load_signer
from flows.watermarking import marks_of, watermark_settings, write_lookup


def _metrics(
    totals: dict[str, Any], summaries: list[dict[str, Any]], wall_s: float
) -> dict[str, Any]:
    """Run metrics: item totals (computed part by part) plus this run's generation speed."""
    generated = sum(s["n_generated"] for s in summaries)
    generated_audio_s = sum(s["generated_audio_s"] for s in summaries)
    return {
        **totals,
        "items_generated": generated,
        "generation_wall_s": wall_s,
        "utterances_per_s": generated / wall_s if wall_s > 0 else None,
        "audio_s_per_wall_s": generated_audio_s / wall_s if wall_s > 0 else None,
    }


def _samples(store: Store, run_id: str, n: int) -> dict[str, bytes]:
    """The first ``n`` ok items' audio (withheld audio excluded), read from slim columns."""
    items = stats.read_columns(store, run_id, ["id", "status", "audio_format"])
    ok = items[items["status"] == schema.STATUS_OK]
    checked = stats.read_columns(
        store, run_id, ["id", "quarantined"], layout.validation_dir(run_id)
    )
    if "quarantined" in checked.columns:
        withheld = set(checked.loc[checked["quarantined"].fillna(False).astype(bool), "id"])
        ok = ok[~ok["id"].isin(withheld)]
    return {
        f"{row.id}.{row.audio_format}": store.read_bytes(layout.audio(row.id, row.audio_format))
        for row in ok.head(n).itertuples()
    }


def _log_to_mlflow(cfg: RunConfig, store: Store, plan, metrics: dict[str, Any], assessed) -> str:
    uri = tracking.tracking_uri(cfg.tracking.mlflow_tracking_uri, store)
    tags = {"audio_synth.run_id": plan.run_id, "prefect.flow_run_id": str(flow_run.id or "")}
    gen = build_generator(cfg.generator.name, cfg.generator.params)
    tags["generator"] = f"{gen.name} {gen.version}"
    with tracking.start_run(uri, cfg.tracking.experiment, plan.run_id, tags) as run:
        tracking.log_config(cfg.model_dump(mode="json"))
        tracking.log_metrics(metrics)
        samples = _samples(store, plan.run_id, cfg.tracking.sample_audio)
        if samples:
            tracking.log_files(samples, "samples")
        records = consent.list_records(planning.registry_of(cfg, store))
        if records:  # the consent state this run was planned under, for audits
            tracking.log_files({"consent.parquet": consent.consent_parquet(records)}, "consent")
        if assessed is not None:
            log_assessment(assessed[0], store, assessed[1])
        return run.info.run_id


@flow(name="catalog-generation")
def catalog_flow(
    config: str | dict[str, Any],
    output: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Narrate a text catalog: FLAC/WAV files plus Parquet metadata, tracked in MLflow."""
    logger = get_run_logger()
    # Parameters handed over by flows.api are redacted copies: restore the real ones in-process.
    cfg = resolve_run(
        restore(config), RunConfig, load_config, restore(output), dask_address, workers
    )
    store = open_store(cfg.output.url, cfg.output.storage_options)
    with output_lease(store, "catalog", on_wait=logger.warning):
        return _catalog_run(cfg, store, logger)


def _catalog_run(cfg: RunConfig, store: Store, logger: Any) -> dict[str, Any]:
    """The run body, under the output's lease: one run per output at a time (pipeline/lease.py)."""
    generator = build_generator(cfg.generator.name, cfg.generator.params)
    validators = validator_specs(cfg.validation)
    signer = load_signer(cfg.provenance, logger)  # a bad key fails before any work
    watermark = watermark_settings(cfg.watermark, logger)  # so does a bad watermark key
    c2pa = c2pa_material(cfg.provenance, signer)  # and C2PA that cannot sign here
    marks = item_marks(marks_of(watermark), cfg.provenance)
    withheld = withhold_revoked(store, cfg.consent, "catalog", logger)
    # Same catalog bytes and config as the last finished run: that run is the answer, and the
    # catalog need not be planned row by row (a no-op nightly run at any size costs one hash).
    key = planning.plan_key(cfg, generator, marks)
    done = planning.finished_run(store, key)
    plan = None
    if done is None:
        plan = planning.build_plan(cfg, generator, store, marks=marks)
        done = runs.completed(store, plan.run_id)
    if done is not None:
        run_id = done["run_id"]
        logger.warning("run %s is already complete under %s: nothing to do", run_id, store.url)
        if not done.get("gate", {}).get("passed", True):
            raise GateFailed(
                f"run {run_id} is complete but failed its gate: {done['gate']['reasons']}",
                done,
            )
        return done
    pending = runs.prepare(
        store,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )
    logger.warning(
        "run %s: %d items in %d shards, %d shards to do",
        plan.run_id,
        plan.items.num_rows,
        len(plan.shards),
        len(pending),
    )
    start = time.perf_counter()
    job = ShardJob(
        cfg.generator,
        cfg.sharding.batch_size,
        cfg.compute.retries,
        cfg.compute.retry_delay_s,
        validators,
        watermark=watermark,
        c2pa=c2pa,
    )
    mlflow_uri = tracking.tracking_uri(cfg.tracking.mlflow_tracking_uri, store)
    result = run_shards(
        pending, store, job, cfg.compute, cfg.compute.gpu_per_task, logger, mlflow_uri
    )
    wall_s = time.perf_counter() - start
    if result["errors"]:
        raise AudioSynthError(
            f"{len(result['errors'])} of {len(pending)} shards failed after retries "
            f"(first: {result['errors'][0]}); re-run the same command to resume"
        )
    # Part by part: the driver never holds a whole run's items for its own bookkeeping.
    metrics = _metrics(stats.item_totals(store, plan.run_id), result["summaries"], wall_s)
    metrics["shards_run"] = len(pending)
    workers = sorted({s["worker"] for s in result["summaries"]})
    summary: dict[str, Any] = {"metrics": metrics, "workers": workers}
    record(summary, withheld)
    assessed = None
    if cfg.validation.enabled:
        _, assessment, urls = assess_run(store, plan.run_id, cfg.validation)
        assessed = (assessment, urls)
        summary["gate"] = {"passed": assessment.gate_passed, "reasons": assessment.gate_reasons}
        summary["reports"] = urls
        summary["assessment"] = assessment.summary
    summary["mlflow_run_id"] = _log_to_mlflow(cfg, store, plan, metrics, assessed)
    changed = changes.changes_table(plan.items, plan.gone)
    store.write_table(layout.changes(plan.run_id), changed)
    if watermark is not None:  # before the commit: the signed listing covers it
        marked = stats.read_columns(store, plan.run_id, list(ITEM_COLUMNS))
        summary["watermark"] = write_lookup(store, plan.run_id, marked, watermark)
    summary |= {
        "n_shards": len(plan.shards),
        "items_per_shard": plan.items_per_shard,
        "plan_key": key,
        "items": f"{layout.items_dir(plan.run_id)}/",
        "changes": changes.change_counts(changed),
    }
    manifest = runs.commit(
        store,
        "catalog",
        plan.run_id,
        scrub(summary),
        redact(cfg.model_dump(mode="json")),
        plan.previous_run_id,
        signer=signer,
        c2pa=c2pa is not None,
    )
    logger.warning(
        "run %s complete: %d ok, %d failed, %.2f audio hours",
        plan.run_id,
        metrics["items_ok"],
        metrics["items_failed"],
        metrics["audio_hours"],
    )
    if assessed is not None and not assessed[0].gate_passed:
        raise GateFailed(gate_message(plan.run_id, *assessed), manifest)
    return manifest
