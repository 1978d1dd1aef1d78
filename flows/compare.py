"""The compare flow: candidates speak the same prompts (one task each, over Dask), their metrics
are compared with bootstrap CIs, logged to MLflow (a parent run, a child run per candidate), and
the challenger model version takes the registry alias exactly when the promotion rule says so.

It runs on the shared run lifecycle: the evaluation id hashes what determines the candidates' audio
(prompts, pinned model versions, validators, format), and each candidate is a shard whose done part
is ``evaluations/<eval_id>/<label>/metrics.parquet``, so runs that differ only in the promotion rule
reuse finished candidates; the run id adds the decision rule, and the run commits a manifest.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from typing import Any

import pandas as pd
import pyarrow as pa
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect_dask import DaskTaskRunner

from audio_synth_core.compare.evaluate import evaluation_id, pin_candidate
from audio_synth_core.compare.promotion import Decision, decide_promotion, decision_id
from audio_synth_core.compare.prompts import load_prompts
from audio_synth_core.compare.table import (
    GateStats,
    compare_table,
    gate_stats,
    table_metrics,
    table_records,
)
from audio_synth_core.config.compare import CandidateSpec, CompareConfig, load_compare_config
from audio_synth_core.config.models import ComputeConfig
from audio_synth_core.config.secrets import redact, scrub
from audio_synth_core.errors import AudioSynthError, ConfigError
from audio_synth_core.generators.base import build_generator
from audio_synth_core.models.registry_uri import use_registry
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.lease import output_lease
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.reporting.compare_report import candidate_samples, comparison_report_html
from audio_synth_core.store import ids, layout
from audio_synth_core.store.storage import Store
from flows import tracking
from flows.compute import dask_runner, effective_gpus, gpu_annotation
from flows.credentials import Sealed, restore, seal
from flows.prepare import open_store, resolve, validator_specs, with_compute
from flows.progress import gather
from tasks.compare import candidate_summary, evaluate_candidate_task


def resolve_compare_config(config: str | dict[str, Any] | CompareConfig) -> CompareConfig:
    return resolve(config, CompareConfig, load_compare_config)


def _runner(compute: ComputeConfig, needs_gpu: bool) -> tuple[DaskTaskRunner, bool]:
    """The Dask runner, and whether GPU candidates may be annotated with a GPU resource."""
    gpus = effective_gpus(compute, 1 if needs_gpu else 0)
    return dask_runner(compute, gpus), bool(gpus)


@flow(name="evaluate-candidates")
def evaluate_candidates(
    shards: list[ShardSpec],
    sealed_candidates: Sealed,
    prompts_json: str,
    validators: str,
    sealed_store: Sealed,
    sealed_registry_uri: Sealed,
    audio_format: str,
    compute: ComputeConfig,
    annotate_gpu: bool,
) -> dict[str, Any]:
    """One task per pending candidate; a GPU candidate is submitted under a GPU annotation.
    Candidates, store and registry URI arrive sealed: Prefect stores only their redacted views."""
    candidates: dict[str, CandidateSpec] = sealed_candidates.value
    store: Store = sealed_store.value
    registry_uri: str | None = sealed_registry_uri.value
    task = evaluate_candidate_task.with_options(
        retries=compute.retries, retry_delay_seconds=compute.retry_delay_s
    )
    futures = []
    for spec in shards:
        candidate = candidates[spec.name]
        args = (spec, candidate.model_dump_json(), prompts_json, validators, store)
        kwargs = {"registry_uri": registry_uri, "audio_format": audio_format}
        with gpu_annotation(1 if annotate_gpu and candidate.needs_gpu else 0):
            futures.append(task.submit(*args, **kwargs))
    summaries, errors = gather(futures, "compare", sum(s.n_items for s in shards))
    return {"summaries": summaries, "errors": errors}


def _pin_and_check(cfg: CompareConfig) -> list[CandidateSpec]:
    """Pin aliased model URIs to versions and build every generator once: a bad candidate fails
    here, naming it, before any task runs."""
    from mlflow.exceptions import MlflowException

    pinned = []
    for c in cfg.candidates:
        try:
            spec = pin_candidate(c)
            build_generator(spec.generator.name, spec.generator.params)
        except (TypeError, ValueError, AudioSynthError, MlflowException) as exc:
            raise ConfigError(f"candidates[{c.label}].generator: {exc}") from None
        pinned.append(spec)
    return pinned


def _alias_version(model_name: str, alias: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None  # no version holds the alias yet


def _log_candidates(
    cfg: CompareConfig, summaries: dict[str, dict[str, Any]], table: pd.DataFrame
) -> dict[str, str]:
    """Inside the parent run: one nested child run per candidate (generator name, version and
    parameters as params; means, CIs and differences as metrics). Returns the child run ids."""
    import mlflow

    children: dict[str, str] = {}
    for label, s in summaries.items():
        with mlflow.start_run(run_name=label, nested=True, tags={"candidate": label}) as child:
            params = {
                "candidate.label": label,
                "candidate.model_uri_configured": cfg.candidate(label).generator.params.get(
                    "model_uri"
                ),
                "generator.name": s["generator"],
                "generator.version": s["generator_version"],
                **tracking.flatten("generator.params", s["generator_params"], {}),
            }
            # Generator parameters may hold credentials (a model bucket's storage_options).
            public = redact(params)
            mlflow.log_params({k: str(v)[:6000] for k, v in public.items() if v is not None})
            metrics: dict[str, Any] = {"prompts": s["n_items"], "prompts_ok": s["n_ok"]}
            for r in table[table["candidate"] == label].itertuples(index=False):
                metrics |= {
                    r.metric: r.mean,
                    f"{r.metric}_ci_low": r.ci_low,
                    f"{r.metric}_ci_high": r.ci_high,
                }
                if r.candidate != r.reference:
                    metrics[f"{r.metric}_diff_vs_{r.reference}"] = r.diff_mean
            tracking.log_metrics(metrics)
            children[label] = child.info.run_id
    parent_metrics: dict[str, Any] = {}
    for r in table.itertuples(index=False):
        parent_metrics[f"{r.candidate}.{r.metric}"] = r.mean
        if r.candidate != r.reference:
            parent_metrics[f"{r.candidate}.{r.metric}.diff"] = r.diff_mean
    tracking.log_metrics(parent_metrics)
    return children


def _apply_decision(decision: Decision) -> Decision:
    """Inside the parent run: move the alias when the decision promotes; tag the parent."""
    import mlflow

    from audio_synth_core.models.registry import set_alias

    if decision.promote:
        set_alias(decision.model_name, decision.alias, decision.version)
        decision = replace(decision, alias_set=True)
    mlflow.log_params(
        {
            "decision.promote": decision.promote,
            "decision.rule": decision.rule,
            "decision.reason": decision.reason[:6000],
        }
    )
    tags = {
        "compare.decision": "promote" if decision.promote else "keep",
        "compare.rule": decision.rule,
        "compare.reason": decision.reason[:5000],
    }
    if decision.alias_set:
        tags["compare.alias"] = f"{decision.model_name}@{decision.alias} -> {decision.version}"
    mlflow.set_tags(tags)
    tracking.log_metrics({"decision.promote": float(decision.promote)})
    return decision


@flow(name="compare-generators")
def compare_flow(
    config: str | dict[str, Any],
    output: str,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Compare generators on the same prompts; promote the challenger by alias when it wins."""

    logger = get_run_logger()
    # Parameters handed over by flows.api are redacted copies: restore the real ones in-process.
    cfg = resolve_compare_config(restore(config))
    output = restore(output)
    compute = with_compute(cfg.compute, dask_address, workers)
    store = open_store(output)
    with output_lease(store, "compare", on_wait=logger.warning):
        return _compare_run(cfg, compute, store, logger)


def _compare_run(
    cfg: CompareConfig, compute: ComputeConfig, store: Store, logger: Any
) -> dict[str, Any]:
    """The run body, under the output's lease: one run per output at a time (pipeline/lease.py)."""
    uri = tracking.tracking_uri(cfg.tracking.mlflow_tracking_uri, store)
    use_registry(uri)  # aliases resolve in, and are set in, this registry
    prompts = load_prompts(cfg)
    validators = validator_specs(cfg.validation) or "[]"
    pinned = _pin_and_check(cfg)
    eval_id = evaluation_id(cfg, prompts, pinned, validators)
    did = decision_id(cfg)
    run_id = ids.run_id(cfg.name, ids.digest(eval_id, did))
    done = runs.completed(store, run_id)
    if done is not None:
        logger.warning("comparison %s is already complete under %s", run_id, store.url)
        return done
    promotion = cfg.promotion
    alias_before = _alias_version(promotion.model_name, promotion.alias) if promotion else None

    shards = [ShardSpec(eval_id, i, len(prompts), c.label) for i, c in enumerate(pinned)]
    pending = runs.pending(store, shards, lambda s: layout.candidate_metrics(s.run_id, s.name))
    logger.warning(
        "comparison %s: %d candidates x %d prompts, %d already done",
        run_id,
        len(pinned),
        len(prompts),
        len(shards) - len(pending),
    )
    runner, annotate = _runner(compute, any(c.needs_gpu for c in pinned))
    if any(c.needs_gpu for c in pinned) and not annotate:
        logger.warning(
            "GPU candidates requested, but this LocalCluster has no GPU: they run unannotated"
        )
    prompts_json = json.dumps(
        [
            {"id": p.id, "text": p.text, "language": p.language, "attributes": dict(p.attributes)}
            for p in prompts
        ]
    )
    start = time.perf_counter()
    result = evaluate_candidates.with_options(task_runner=runner)(
        pending,
        seal({c.label: c for c in pinned}),
        prompts_json,
        validators,
        seal(store),
        seal(uri),
        cfg.audio_format,
        compute,
        annotate,
    )
    wall_s = time.perf_counter() - start
    if result["errors"]:
        raise AudioSynthError(
            f"{len(result['errors'])} of {len(pending)} candidates failed after retries "
            f"(first: {result['errors'][0]}); re-run the same command to resume"
        )
    frames = {
        c.label: store.read_table(layout.candidate_metrics(eval_id, c.label)).to_pandas()
        for c in pinned
    }
    ran = {s["label"] for s in result["summaries"]}
    finished = [
        candidate_summary(label, pa.Table.from_pandas(f, preserve_index=False), 0.0, True)
        for label, f in frames.items()
        if label not in ran
    ]
    by_label = {s["label"]: s for s in [*result["summaries"], *finished]}
    summaries = {c.label: by_label[c.label] for c in pinned}  # in config order
    for label, s in summaries.items():
        if s["n_ok"] == 0:
            first = frames[label]["error"].dropna()
            raise AudioSynthError(
                f"candidate {label!r} synthesized none of the {s['n_items']} prompts "
                f"(first error: {first.iloc[0] if len(first) else 'unknown'})"
            )

    reference = promotion.incumbent if promotion else pinned[0].label
    table = compare_table(
        frames,
        table_metrics(cfg, frames),
        cfg.validation.n_boot,
        cfg.seed,
        reference=reference,
        confidence=cfg.metric.confidence,
    )
    gates: dict[str, GateStats] = {
        label: gate_stats(f, cfg.validation.fairness_attributes, cfg.validation.n_boot, cfg.seed)
        for label, f in frames.items()
    }
    decision = decide_promotion(table, cfg, gates)
    if promotion:
        from audio_synth_core.models.registry import resolve_model_uri

        challenger_uri = next(
            c for c in pinned if c.label == promotion.challenger
        ).generator.params["model_uri"]
        version = resolve_model_uri(challenger_uri)[1].rsplit("/", 1)[-1]
        decision = replace(decision, version=version, alias_before=alias_before)
        incumbent_params = next(
            c for c in pinned if c.label == promotion.incumbent
        ).generator.params
        if incumbent_params.get("model_uri") == challenger_uri:
            # Both names resolve to one version (e.g. right after the first training run).
            decision = replace(
                decision,
                promote=False,
                rule="same_version",
                reason=f"keep: challenger {promotion.challenger!r} and incumbent "
                f"{promotion.incumbent!r} are the same model version ({challenger_uri})",
            )

    folder = layout.decision_dir(run_id)
    summary: dict[str, Any] = {
        "evaluation_id": eval_id,
        "decision_id": did,
        "prompts": len(prompts),
        "candidates": {  # generator parameters may hold credentials (model storage_options)
            k: {
                kk: redact(vv) if kk == "generator_params" else vv
                for kk, vv in v.items()
                if kk != "worker"
            }
            for k, v in summaries.items()
        },
        "reference": reference,
        "wall_s": wall_s,
    }
    samples = candidate_samples(
        store,
        eval_id,
        frames,
        prompts,
        cfg.validation.report_samples,
        cfg.audio_format,
        cfg.metric.name,
    )
    report_summary = {
        "run": run_id,
        "prompts": len(prompts),
        "reference": reference,
        "generators": "; ".join(
            f"{k}: {v['generator']} {v['generator_version']}" for k, v in summaries.items()
        ),
    }
    tags = {"audio_synth.compare_run_id": run_id, "prefect.flow_run_id": str(flow_run.id or "")}
    with tracking.start_run(uri, cfg.tracking.experiment, run_id, tags) as parent:
        tracking.log_config(cfg.model_dump(mode="json"))
        children = _log_candidates(cfg, summaries, table)
        decision = _apply_decision(decision)
        # Rendered after the alias moved, so the report states what actually happened.
        html = comparison_report_html(
            table,
            decision,
            samples,
            gates,
            summary=report_summary,
            max_prompts=cfg.validation.report_samples,
        )
        files = {
            "table.csv": table.to_csv(index=False).encode(),
            "table.json": json.dumps(table_records(table), indent=2).encode(),
            "decision.json": json.dumps(decision.to_dict(), indent=2).encode(),
            "report.html": html.encode(),
        }
        tracking.log_files(files, "comparison")
        parent_id = parent.info.run_id
    for name, data in files.items():
        store.write_bytes(f"{folder}/{name}", data)
    summary |= {
        "table": table_records(table),
        "gates": {k: asdict(v) for k, v in gates.items()},
        "decision": decision.to_dict(),
        "report": store.uri(f"{folder}/report.html"),
        "table_csv": store.uri(f"{folder}/table.csv"),
        "mlflow_run_id": parent_id,
        "mlflow_child_run_ids": children,
        "tracking_uri": uri,
    }
    logger.warning("comparison %s: %s", run_id, decision.reason)
    return runs.commit(
        store, "compare", run_id, scrub(summary), redact(cfg.model_dump(mode="json"))
    )
