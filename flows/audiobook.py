"""The audiobook flow: books -> chapter list -> chunk items -> narrate shards over Dask -> one task
per chapter (check, assemble, master, MP3, WebVTT, ACX) -> per book (sample, M4B, book.json) ->
report, MLflow, commit -> ACX gate.

Re-runs do only what changed: chunks are content-addressed (a changed sentence or lexicon entry
regenerates only its chunks), chapters and books are keyed by their content (an unchanged chapter's
files are reused, not re-assembled), and the manifest says which books and chapters were new,
changed or unchanged.
"""

from __future__ import annotations

import json
import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import unmapped

from audio_synth_core.audiobook import report
from audio_synth_core.audiobook.books import find_books, read_book
from audio_synth_core.audiobook.deliver import (
    BookMeta,
    C2paSpec,
    DeliverySpec,
    mastering_settings,
    peak_rss_mb,
    takes_of,
)
from audio_synth_core.audiobook.model import Book
from audio_synth_core.audiobook.plan import AudiobookPlan, BookPlan, build_plan
from audio_synth_core.config.audiobook import AudiobookConfig, load_audiobook_config
from audio_synth_core.config.models import ComputeConfig
from audio_synth_core.config.secrets import redact, scrub
from audio_synth_core.errors import AudioSynthError
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import changes, runs
from audio_synth_core.pipeline.lease import output_lease
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import build_validator
from audio_synth_core.voices.personas import registry_store
from audio_synth_core.watermark import WatermarkSettings
from flows import tracking
from flows.compute import dask_runner
from flows.credentials import Sealed, restore, seal
from flows.outcome import GateFailed
from flows.prepare import check_readable, check_scheduler, open_store, resolve_run
from flows.progress import gather
from flows.revocation import record, withhold_revoked
from flows.shards import ShardJob, run_shards
from flows.signing import c2pa_material, load_signer
from flows.watermarking import marks_of, watermark_settings, write_lookup
from tasks.audiobook import deliver_book_task, deliver_chapter_task


def intelligibility_specs(cfg: AudiobookConfig) -> str | None:
    """Validator specs (JSON) for the chapter tasks, the validator built once here to check."""
    if not cfg.intelligibility.enabled:
        return None
    specs = [{"name": "intelligibility", "params": {"max_wer": cfg.intelligibility.max_wer}}]
    build_validator("intelligibility", specs[0]["params"])
    return json.dumps(specs, sort_keys=True)


def read_books(book_or_folder: str, cfg: AudiobookConfig) -> list[Book]:
    """Every book at ``book_or_folder``, read (a bad book raises a BookError naming it)."""
    options = cfg.input_storage_options
    return [read_book(s, options, cfg.language) for s in find_books(book_or_folder, options)]


def preflight_audiobook(
    book_or_folder: str,
    output: str | None = None,
    config: str | dict[str, Any] | AudiobookConfig | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> list[Book]:
    """Everything an audiobook run can check before any server starts: config, books (corrupt,
    DRM, image-only, bad manifests), voices, generator, validators, mastering settings, the
    scheduler and the output. Returns the books read."""
    cfg = resolve_run(
        config or {}, AudiobookConfig, load_audiobook_config, output, dask_address, workers
    )
    check_readable(book_or_folder, "book or folder", cfg.input_storage_options)
    generator = build_generator(cfg.generator.name, cfg.generator.params)
    books = read_books(book_or_folder, cfg)
    store = open_store(cfg.output.url, cfg.output.storage_options)
    # Unknown voices or personas, missing consent and bad lexicon rules fail here.
    build_plan(cfg, generator, books, registry=registry_store(cfg.consent.registry_url, store))
    intelligibility_specs(cfg)
    mastering_settings(cfg.mastering)
    check_scheduler(cfg.compute.dask_address)
    return books


class _Work:
    """The books' plans and chunk durations for the delivery sub-flow. Too large for a flow-run
    parameter (Prefect caps them at 512 KB; a long book's text is more), so it travels sealed:
    in-process as is, and shown to Prefect only as its type name (private attributes)."""

    def __init__(self, plans: list[BookPlan], durations: dict[str, float]) -> None:
        self._plans = plans
        self._durations = durations


@flow(name="audiobook-delivery")
def deliver_books(
    sealed_work: Sealed,
    sealed_store: Sealed,
    spec: DeliverySpec,
    generator: str,
    generator_params_json: str,
    validators_json: str | None,
    retries: int = 2,
    retry_delay_s: float = 2.0,
    sealed_watermark: Sealed | None = None,
    sealed_c2pa: Sealed | None = None,
) -> dict[str, Any]:
    """One task per chapter (all books at once), then one task per book, on the Dask runner.
    Store, watermark and C2PA material arrive sealed: Prefect stores only their redacted views."""
    store: Store = sealed_store.value
    work: _Work = sealed_work.value
    plans, durations = work._plans, work._durations
    watermark = sealed_watermark.value if sealed_watermark is not None else None
    c2pa = sealed_c2pa.value if sealed_c2pa is not None else None  # holds the C2PA signing key
    options = {"retries": retries, "retry_delay_seconds": retry_delay_s}
    jobs = [
        (bp, track, chapter) for bp in plans for track, chapter in enumerate(bp.chapters, start=1)
    ]
    metas = {bp.book_id: _meta(bp) for bp in plans}
    futures = deliver_chapter_task.with_options(**options).map(
        [c for _, _, c in jobs],
        unmapped(store),
        [metas[bp.book_id] for bp, _, _ in jobs],
        [t for _, t, _ in jobs],
        unmapped(spec),
        generator,
        generator_params_json,
        validators_json,
        unmapped(watermark),
        unmapped(c2pa),
    )
    chapters, errors = gather(futures, "chapters", len(jobs))
    if errors:
        return {"chapters": chapters, "books": [], "errors": errors}
    by_key = {(c["book_id"], c["key"]): c for c in chapters}
    book_futures = []
    for bp in plans:
        ordered = [by_key[(bp.book_id, c.key)] for c in bp.chapters]
        sample = bp.book.manifest.retail_sample
        book_futures.append(
            deliver_book_task.with_options(**options).submit(
                metas[bp.book_id],
                store,
                bp.key,
                ordered,
                list(bp.sample_chunks),
                takes_of(ordered),
                {c.item_id: durations.get(c.item_id, 0.0) for c in bp.sample_chunks},
                (sample.min_s, sample.max_s),
                spec,
                c2pa,
            )
        )
    books, errors = gather(book_futures, "books", len(plans))
    return {"chapters": chapters, "books": books, "errors": errors}


def _meta(bp: BookPlan) -> BookMeta:
    m = bp.book.manifest
    return BookMeta(
        bp.book_id,
        bp.book.title,
        bp.book.author,
        m.narrator,
        m.year,
        bp.book.language,
        m.publisher,
        len(bp.chapters),
    )


@flow(name="audiobook")
def audiobook_flow(
    book_or_folder: str,
    output: str | None = None,
    config: str | dict[str, Any] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Narrate every book at ``book_or_folder`` into retail-ready files under ``output``."""
    logger = get_run_logger()
    cfg = resolve_run(
        restore(config) or {},
        AudiobookConfig,
        load_audiobook_config,
        restore(output),
        dask_address,
        workers,
    )
    store = open_store(cfg.output.url, cfg.output.storage_options)
    with output_lease(store, "audiobook", on_wait=logger.warning):
        return _audiobook_run(cfg, restore(book_or_folder), store, logger)


def _log_chapters(books: list[Book], logger: Any) -> list[dict[str, Any]]:
    """The chapter list with word counts, first; chapters without text named in a warning."""
    listing = []
    for book in books:
        logger.warning(
            "book %s %r: %d chapters, %d words",
            book.book_id,
            book.title,
            len(book.chapters),
            book.words,
        )
        for c in book.chapters:
            state = f" -- NOT NARRATED: {c.skipped_reason}" if c.skipped_reason else ""
            logger.warning("  %3d. %s (%d words)%s", c.number, c.title, c.words, state)
        listing.append(
            {"book_id": book.book_id, "title": book.title, "chapters": book.chapter_list()}
        )
    return listing


def _audiobook_run(
    cfg: AudiobookConfig, book_or_folder: str, store: Store, logger: Any
) -> dict[str, Any]:
    started = time.perf_counter()
    generator = build_generator(cfg.generator.name, cfg.generator.params)
    validators_json = intelligibility_specs(cfg)
    mastering_settings(cfg.mastering)
    signer = load_signer(cfg.provenance, logger)
    watermark = watermark_settings(cfg.watermark, logger)  # a bad key fails before any work
    books = read_books(book_or_folder, cfg)
    listing = _log_chapters(books, logger)
    withheld = withhold_revoked(store, cfg.consent, "audiobook", logger)
    registry = registry_store(cfg.consent.registry_url, store)
    plan = build_plan(cfg, generator, books, marks_of(watermark), registry)
    done = runs.completed(store, plan.run_id)
    if done is not None:
        logger.warning("run %s is already complete under %s: nothing to do", plan.run_id, store.url)
        if not done.get("gate", {}).get("passed", True):
            raise GateFailed(f"run {plan.run_id} is complete but failed its gate", done)
        return done
    store.write_json(layout.audiobook_chapters_report(plan.run_id), listing)
    previous_id = runs.latest_run_id(store, "audiobook")
    previous = changes.previous_items(store, previous_id) if previous_id else None
    items, _gone = changes.mark_changes(plan.items, previous)
    pending = runs.prepare(
        store,
        items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )
    logger.warning(
        "run %s: %d chunks in %d shards, %d shards to narrate",
        plan.run_id,
        items.num_rows,
        len(plan.shards),
        len(pending),
    )
    job = ShardJob(
        cfg.generator,
        cfg.sharding.batch_size,
        cfg.compute.retries,
        cfg.compute.retry_delay_s,
        watermark=watermark,
    )
    mlflow_uri = tracking.tracking_uri(cfg.tracking.mlflow_tracking_uri, store)
    result = run_shards(
        pending, store, job, cfg.compute, cfg.compute.gpu_per_task, logger, mlflow_uri
    )
    narrate_s = time.perf_counter() - started
    if result["errors"]:
        raise AudioSynthError(
            f"{len(result['errors'])} of {len(pending)} shards failed after retries "
            f"(first: {result['errors'][0]}); re-run the same command to resume"
        )
    df = runs.read_items(store, plan.run_id)
    failed = df[df["status"] != schema.STATUS_OK]
    if len(failed):
        first = failed.iloc[0]
        raise AudioSynthError(
            f"{len(failed)} chunks could not be narrated (first: {first['catalog_id']} chunk "
            f"{first['chunk_index']}: {first['error']}); fix the text or voice and re-run"
        )
    durations = dict(zip(df["id"], df["duration_s"].astype(float), strict=True))
    spec = DeliverySpec(
        dict(cfg.mastering), cfg.mp3_bitrate_kbps, dict(cfg.intelligibility.retry_params)
    )
    deliver_start = time.perf_counter()
    material = c2pa_material(cfg.provenance, signer)  # None: provenance.c2pa or signing off
    mark_key = watermark.fingerprint if watermark is not None else None
    c2pa = C2paSpec(material, generator.name, generator.version, mark_key) if material else None
    delivered = _deliver(plan, durations, store, spec, cfg, validators_json, watermark, c2pa)
    deliver_s = time.perf_counter() - deliver_start
    if delivered["errors"]:
        raise AudioSynthError(
            f"{len(delivered['errors'])} chapters or books could not be delivered "
            f"(first: {delivered['errors'][0]}); re-run the same command to resume"
        )
    previous = runs.completed(store, previous_id) if previous_id else None
    books_summary = report.book_states(plan, delivered, previous)
    metrics = report.metrics(df, result["summaries"], delivered, narrate_s, deliver_s)
    metrics["driver_peak_rss_mb"] = peak_rss_mb()
    gate = report.gate(delivered, cfg.gate.acx)
    summary: dict[str, Any] = {
        "metrics": metrics,
        "books": books_summary,
        "chapter_list": listing,
        "gate": gate,
        "n_shards": len(plan.shards),
        "items": f"{layout.items_dir(plan.run_id)}/",
        "workers": sorted({s["worker"] for s in result["summaries"]}),
    }
    record(summary, withheld)
    if watermark is not None:  # before the commit: the signed listing covers it
        summary["watermark"] = write_lookup(store, plan.run_id, df, watermark)
    html_rel = layout.audiobook_report(plan.run_id)
    store.write_bytes(html_rel, report.render(plan, summary, delivered).encode("utf-8"))
    summary["reports"] = {"html": store.uri(html_rel)}
    summary["mlflow_run_id"] = _log_to_mlflow(cfg, store, plan, metrics, html_rel)
    manifest = runs.commit(
        store,
        "audiobook",
        plan.run_id,
        scrub(summary),
        redact(cfg.model_dump(mode="json")),
        previous_id,
        signer=signer,
    )
    logger.warning(
        "run %s complete: %d books, %.2f audio hours, ACX %d/%d files pass",
        plan.run_id,
        len(plan.books),
        metrics["audio_hours"],
        metrics["acx_files_passed"],
        metrics["acx_files"],
    )
    if not gate["passed"] and cfg.gate.acx == "fail":
        raise GateFailed(
            f"run {plan.run_id} failed its gate: {'; '.join(gate['reasons'])}. "
            f"Report: {summary['reports']['html']}",
            manifest,
        )
    return manifest


def _deliver(
    plan: AudiobookPlan,
    durations: dict[str, float],
    store: Store,
    spec: DeliverySpec,
    cfg: AudiobookConfig,
    validators_json: str | None,
    watermark: WatermarkSettings | None,
    c2pa: C2paSpec | None = None,
) -> dict[str, Any]:
    compute: ComputeConfig = cfg.compute
    runner = dask_runner(compute)
    return deliver_books.with_options(task_runner=runner)(
        seal(_Work(list(plan.books), durations)),
        seal(store),
        spec,
        cfg.generator.name,
        json.dumps(cfg.generator.params, sort_keys=True),
        validators_json,
        compute.retries,
        compute.retry_delay_s,
        seal(watermark) if watermark is not None else None,
        seal(c2pa) if c2pa is not None else None,
    )


def _log_to_mlflow(
    cfg: AudiobookConfig, store: Store, plan: AudiobookPlan, metrics: dict[str, Any], html: str
) -> str:
    uri = tracking.tracking_uri(cfg.tracking.mlflow_tracking_uri, store)
    tags = {
        "audio_synth.run_id": plan.run_id,
        "audio_synth.kind": "audiobook",
        "prefect.flow_run_id": str(flow_run.id or ""),
        "books": ", ".join(bp.book_id for bp in plan.books),
    }
    with tracking.start_run(uri, cfg.tracking.experiment, plan.run_id, tags) as run:
        tracking.log_config(cfg.model_dump(mode="json"))
        tracking.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        tracking.log_files({"audiobook.html": store.read_bytes(html)}, "reports")
        return run.info.run_id
