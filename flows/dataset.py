"""The dataset synthesis flow: plan (balanced, split) -> generate + validate clean clips per shard
on Dask -> augment per shard on Dask -> quality filter -> leak check -> exports -> card, report,
MLflow -> commit.

A dataset run is a run of the shared lifecycle (``pipeline/runs.py``), kind ``dataset``: a
finished run is returned, not redone; a shard whose parts exist is skipped on a re-run.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import pandas as pd
import pyarrow as pa
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import unmapped

from audio_synth_core.config.dataset import DatasetSpec, load_spec
from audio_synth_core.config.models import ValidationConfig, ValidatorSpec
from audio_synth_core.config.secrets import redact, scrub
from audio_synth_core.dataset import filtering, report, splits
from audio_synth_core.dataset.card import card_markdown
from audio_synth_core.dataset.exports import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, export_all
from audio_synth_core.dataset.plan import DatasetPlan, build_plan
from audio_synth_core.dataset.shard import DATASET_SCHEMA, DatasetJob
from audio_synth_core.errors import AudioSynthError
from audio_synth_core.generators.base import Generator, build_generator
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.lease import output_lease
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.voices.personas import registry_store
from flows import tracking
from flows.compute import dask_runner
from flows.credentials import Sealed, restore, seal
from flows.prepare import open_store, resolve_run, validator_specs
from flows.progress import gather
from flows.revocation import record, withhold_revoked
from flows.shards import ShardJob, run_shards
from flows.signing import c2pa_material, item_marks, load_signer
from flows.watermarking import marks_of, watermark_settings, write_lookup
from tasks.dataset import dataset_shard_task


def validators_json(spec: DatasetSpec) -> str | None:
    """The validators the quality filter needs, as the JSON the shard workers build them from."""
    qf = spec.quality_filter
    chosen = [ValidatorSpec(name="quality")]
    if qf.enabled and qf.max_wer is not None:
        chosen.append(ValidatorSpec(name="intelligibility"))
    if qf.enabled and qf.min_dnsmos_ovrl is not None:
        chosen.append(ValidatorSpec(name="dnsmos"))
    return validator_specs(ValidationConfig(validators=chosen))


def dataset_job(spec: DatasetSpec, generator: Generator) -> DatasetJob:
    silence = {
        t.name: {"duration_s": t.duration_s, "level_dbfs": list(t.level_dbfs),
                 "noise_types": list(t.noise_types)}
        for t in spec.texts if t.kind == "silence"
    }  # fmt: skip
    noise = spec.augmentation.noise if spec.augmentation else None
    return DatasetJob(
        audio_format=spec.output.audio_format,
        sample_rate_hz=generator.sample_rate_hz,
        augmentation=spec.augmentation,
        silence=silence,
        embed_speakers=spec.quality_filter.enabled
        and spec.quality_filter.min_speaker_similarity is not None,
        storage_options=dict(noise.storage_options) if noise else {},
    )


@flow(name="dataset-shards")
def dataset_shards(
    specs: list[runs.ShardSpec],
    sealed_store: Sealed,
    sealed_job: Sealed,
    retries: int,
    delay: float,
) -> dict[str, Any]:
    """Map the dataset task (silence, augmentation, dataset part) over the generated shards."""
    store: Store = sealed_store.value
    futures = dataset_shard_task.with_options(retries=retries, retry_delay_seconds=delay).map(
        specs, unmapped(store), unmapped(sealed_job.value)
    )
    summaries, errors = gather(futures, "dataset", sum(s.n_items for s in specs))
    return {"summaries": summaries, "errors": errors}


def write_plan_parts(store: Store, plan: DatasetPlan) -> None:
    """Each shard's dataset rows, once (a resumed run finds them)."""
    existing = set(store.list(layout.dataset_plan_dir(plan.run_id)))
    for index, rows in plan.rows.groupby("shard", sort=True):
        spec = plan.shards[int(index)]
        if f"{spec.name}.parquet" not in existing:
            store.write_table(
                layout.dataset_plan_part(plan.run_id, spec.name),
                pa.Table.from_pandas(rows, preserve_index=False),
            )


def _failed(what: str, errors: list[str], total: int) -> AudioSynthError:
    return AudioSynthError(
        f"{len(errors)} of {total} {what} shards failed after retries (first: {errors[0]}); "
        "re-run the same command to resume"
    )


@flow(name="dataset-synthesis")
def dataset_flow(
    config: str | dict[str, Any],
    output: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Synthesize a balanced, augmented, filtered, leak-free dataset and export it."""
    logger = get_run_logger()
    spec = resolve_run(
        restore(config), DatasetSpec, load_spec, restore(output), dask_address, workers
    )
    store = open_store(spec.output.url, spec.output.storage_options)
    with output_lease(store, "dataset", on_wait=logger.warning):
        return _dataset_run(spec, store, logger)


def _dataset_run(spec: DatasetSpec, store: Store, logger: Any) -> dict[str, Any]:
    generator = build_generator(spec.generator.name, spec.generator.params)
    signer = load_signer(spec.provenance, logger)  # a bad key fails before any work
    watermark = watermark_settings(spec.watermark, logger)  # so does a bad watermark key
    c2pa = c2pa_material(spec.provenance, signer)  # and C2PA that cannot sign here
    validators = validators_json(spec)
    withheld = withhold_revoked(store, spec.consent, "dataset", logger)
    registry = registry_store(spec.consent.registry_url, store)
    plan = build_plan(spec, generator, item_marks(marks_of(watermark), spec.provenance), registry)
    done = runs.completed(store, plan.run_id)
    if done is not None:
        logger.warning("run %s is already complete under %s: nothing to do", plan.run_id, store.url)
        return done
    # The plan report exists before anything is generated.
    store.write_json(layout.dataset_plan_report(plan.run_id), plan.report)
    off = [g for g in plan.report["groups"] if g["within_tolerance"] is False]
    logger.warning(
        "run %s: %d dataset rows (%d clean clips to make) in %d shards; %d groups off target",
        plan.run_id, len(plan.rows), plan.items.num_rows, len(plan.shards), len(off),
    )  # fmt: skip
    write_plan_parts(store, plan)
    pending = runs.prepare(
        store, plan.items, plan.shards, layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )  # fmt: skip
    start = time.perf_counter()
    job = ShardJob(
        spec.generator, spec.sharding.batch_size, spec.compute.retries,
        spec.compute.retry_delay_s, validators, watermark, c2pa,
    )  # fmt: skip
    mlflow_uri = tracking.tracking_uri(spec.tracking.mlflow_tracking_uri, store)
    result = run_shards(pending, store, job, spec.compute, 0, logger, mlflow_uri)
    if result["errors"]:
        raise _failed("generation", result["errors"], len(pending))
    generate_s = time.perf_counter() - start
    todo = runs.pending(store, plan.shards, lambda s: layout.dataset_part(s.run_id, s.name))
    made = dataset_shards.with_options(task_runner=dask_runner(spec.compute))(
        todo, seal(store), seal(dataset_job(spec, generator)), spec.compute.retries,
        spec.compute.retry_delay_s,
    )  # fmt: skip
    if made["errors"]:
        raise _failed("dataset", made["errors"], len(todo))
    wall_s = time.perf_counter() - start
    summary = _finish(spec, store, plan, generator, logger)
    summary["metrics"] |= {
        "generation_wall_s": generate_s, "wall_s": wall_s, "shards_run": len(pending),
        "dataset_shards_run": len(todo),
    }  # fmt: skip
    record(summary, withheld)
    if watermark is not None:  # before the commit: the signed listing covers it
        clean = runs.read_items(store, plan.run_id)
        summary["watermark"] = write_lookup(store, plan.run_id, clean, watermark)
    summary["mlflow_run_id"] = _log_to_mlflow(spec, store, plan, generator, summary)
    manifest = runs.commit(
        store, "dataset", plan.run_id, scrub(summary), redact(spec.model_dump(mode="json")),
        signer=signer, c2pa=c2pa is not None,
    )  # fmt: skip
    m = summary["metrics"]
    logger.warning(
        "run %s complete: %d items kept of %d (%.1f%% rejected), %.3f hours",
        plan.run_id, m["items_kept"], m["items_total"], 100 * m["rejection_rate"], m["hours"],
    )  # fmt: skip
    return manifest


def _finish(
    spec: DatasetSpec, store: Store, plan: DatasetPlan, generator: Generator, logger: Any
) -> dict[str, Any]:
    """Filter, leak check, exports, card and report of the made dataset; the run's summary."""
    folder = layout.dataset_dir(plan.run_id)
    parts = [f"{folder}/{n}" for n in sorted(store.list(folder)) if n.endswith(".parquet")]
    # Embeddings stay on storage: the driver holds one part's at a time, and a float per clip.
    columns = [f.name for f in DATASET_SCHEMA if f.name != "speaker_embedding"]
    items = pa.concat_tables([store.read_table(p).select(columns) for p in parts]).to_pandas()
    if spec.quality_filter.enabled and spec.quality_filter.min_speaker_similarity is not None:
        emb = ["clean_id", "speaker_id", "speaker_embedding"]
        sims = filtering.similarity_by_clip(
            lambda: (store.read_table(p).select(emb).to_pandas() for p in parts)
        )
        items["speaker_similarity"] = items["clean_id"].map(sims).astype("float64")
    decided = filtering.decide(items, spec.quality_filter)
    store.write_table(
        layout.dataset_decisions(plan.run_id), pa.Table.from_pandas(decided, preserve_index=False)
    )
    kept = decided[decided["kept"]].copy()
    leaks = splits.leak_check(
        kept.assign(source_doc=kept["source_id"].where(kept["kind"] == "speech"))
    )
    splits.require_no_leak(leaks, spec.splits.disjoint_by)
    columns = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "label") if c in kept.columns]
    out_dir = layout.dataset_export_dir(plan.run_id)
    exports = export_all(store, kept[columns], spec.output.exports, out_dir, name=spec.name)
    rates = filtering.rejection_rates(decided)
    groups = report.achieved_groups(plan.report["groups"], kept)
    sizes = report.split_sizes_table(kept)
    card = card_markdown(
        spec, plan.run_id, sizes, groups, rates, leaks, exports, generator.describe(),
        len(plan.speakers), root=".",
    )  # fmt: skip
    store.write_bytes(layout.dataset_card(plan.run_id), card.encode())
    metrics = {
        "items_total": len(decided),
        "items_kept": len(kept),
        "items_failed": int((decided["status"] != schema.STATUS_OK).sum()),
        "rejection_rate": float(1 - len(kept) / len(decided)) if len(decided) else 0.0,
        "hours": float(kept["duration_s"].sum() / 3600),
        "speakers": len(plan.speakers),
        **{f"items_{r.split}": int(r.items) for r in sizes.itertuples()},
        **{f"hours_{r.split}": float(r.hours) for r in sizes.itertuples()},
        **{f"leak_{k}": v for k, v in leaks["totals"].items()},
    }
    html = report.report_html(
        f"Dataset {spec.name}: run {plan.run_id}", metrics, groups, rates, leaks, sizes
    )
    store.write_bytes(layout.dataset_report(plan.run_id), html.encode())
    return {
        "metrics": metrics,
        "leak_check": leaks,
        "drop_reasons": filtering.reason_counts(decided),
        "rejection_rates": rates.to_dict(orient="records"),
        "groups": groups.to_dict(orient="records"),
        "sizes": sizes.to_dict(orient="records"),
        "exports": exports,
        "card": layout.dataset_card(plan.run_id),
        "reports": {
            "html": store.uri(layout.dataset_report(plan.run_id)),
            "plan": store.uri(layout.dataset_plan_report(plan.run_id)),
        },
        "items": f"{layout.dataset_dir(plan.run_id)}/",
        "decisions": layout.dataset_decisions(plan.run_id),
        "n_shards": len(plan.shards),
    }


def _log_to_mlflow(
    spec: DatasetSpec, store: Store, plan: DatasetPlan, generator: Generator, summary: dict
) -> str:
    """One MLflow run: spec, metrics, per-group statistics, rejection rates, card, report,
    sample audio per split, and the dataset itself (``mlflow.data``) per split."""
    import mlflow

    uri = tracking.tracking_uri(spec.tracking.mlflow_tracking_uri, store)
    gen = generator.describe()
    tags = {
        "audio_synth.run_id": plan.run_id,
        "audio_synth.kind": "dataset",
        "prefect.flow_run_id": str(flow_run.id or ""),
        "generator": f"{gen['name']} {gen['version']}",
    }
    with tracking.start_run(uri, spec.tracking.experiment, plan.run_id, tags) as run:
        tracking.log_config(spec.model_dump(mode="json"), "spec.json")
        tracking.log_metrics(summary["metrics"])
        rates = pd.DataFrame(summary["rejection_rates"])
        tracking.log_metrics(
            {f"rejection_rate.{r.attribute}.{r.group}"[:250]: r.rejection_rate
             for r in rates.itertuples() if r.attribute in ("split", "source", "gender", "accent")}
        )  # fmt: skip
        mlflow.log_dict(plan.report, "plan_report.json")
        mlflow.log_text(pd.DataFrame(summary["groups"]).to_csv(index=False), "group_stats.csv")
        mlflow.log_text(rates.to_csv(index=False), "rejection_rates.csv")
        mlflow.log_dict(summary["leak_check"], "leak_check.json")
        tracking.log_files(
            {"README.md": store.read_bytes(layout.dataset_card(plan.run_id)),
             "dataset.html": store.read_bytes(layout.dataset_report(plan.run_id))},
            "dataset",
        )  # fmt: skip
        decided = store.read_table(layout.dataset_decisions(plan.run_id)).to_pandas()
        kept = decided[decided["kept"]]
        samples = {}
        for split, df in kept.groupby("split"):
            for row in df.sort_values("id").head(spec.tracking.sample_audio).itertuples():
                kind = "aug" if row.augmented else "clean"
                name = f"{split}-{kind}-{row.label}-{row.id}.{row.audio_format}".replace("/", "_")
                samples[name] = store.read_bytes(row.audio_path)
        if samples:
            tracking.log_files(samples, "samples")
        _log_datasets(kept, store, plan.run_id)
        return run.info.run_id


def _log_datasets(kept: pd.DataFrame, store: Store, run_id: str) -> None:
    """The kept items of each split as an MLflow dataset input (metadata, not audio)."""
    import mlflow

    meta = kept[["id", "split", "text", "label", "speaker_id", "gender", "accent", "augmented",
                 "duration_s", "audio_path"]]  # fmt: skip
    source = store.uri(layout.dataset_export_dir(run_id))
    for split, df in meta.groupby("split"):
        with warnings.catch_warnings():  # a local folder matches two source kinds; either is right
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(
                df.reset_index(drop=True), source=source, name=f"{run_id}-{split}"
            )
        mlflow.log_input(dataset, context=str(split))
