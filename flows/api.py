"""The Python API: what a notebook user imports. Same operations as the ``audio-synth`` CLI.

from flows.api import run_catalog, voices, read_items
manifest = run_catalog("configs/catalog-demo.yaml", output="out/demo")
df = read_items("out/demo")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pandas as pd

from audio_synth_core.config.models import RunConfig
from audio_synth_core.generators.base import VoiceInfo, build_generator
from audio_synth_core.pipeline import runs
from audio_synth_core.store.storage import Store
from flows.credentials import handoff
from flows.prepare import preflight_compare, preflight_run, preflight_train, preflight_validate
from flows.redaction import redacting
from flows.runtime import prefect_api


def _run_flow(
    flow_fn: Any, parsed: Any, config: Any, urls: dict[str, str | None], **options: Any
) -> dict[str, Any]:
    """Run ``flow_fn`` on the local (or PREFECT_API_URL's) Prefect API with redacted parameters:
    the real config and URLs travel in-process (flows.credentials), and logs and errors are
    scrubbed of the secrets of ``parsed`` (the config as its preflight parsed it) while it runs."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(prefect_api())
        stack.enter_context(redacting(parsed, *urls.values()))
        public = {name: stack.enter_context(handoff(url)) for name, url in urls.items()}
        public_config = stack.enter_context(handoff(config))
        return flow_fn(config=public_config, **public, **options)


def run_catalog(
    config: str | dict[str, Any] | RunConfig,
    output: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run the catalog generation flow (starting a local Prefect API unless PREFECT_API_URL is
    set) and return the run manifest. ``dry_run``: only plan, and return what a run would do
    (``preview_catalog``)."""
    if dry_run:  # before importing the flow: a preview never loads Prefect
        return preview_catalog(config, output)
    from flows.catalog import catalog_flow

    if isinstance(config, RunConfig):
        config = config.model_dump(mode="json")
    parsed = preflight_run(config, output, dask_address, workers)  # fails before any server
    return _run_flow(
        catalog_flow,
        parsed,
        config,
        {"output": output},
        dask_address=dask_address,
        workers=workers,
    )


def preview_catalog(
    config: str | dict[str, Any] | RunConfig, output: str | None = None, max_failed: int = 20
) -> dict[str, Any]:
    """Plan a catalog run and say what it would do (items, shards, new/unchanged/gone, items to
    generate, failed rows with reasons) without generating: no Prefect, Dask or MLflow, and
    nothing written to the output (it is only read, for the previous run)."""
    from audio_synth_core.config.models import load_config
    from audio_synth_core.pipeline import planning
    from flows.prepare import check_readable, resolve
    from flows.signing import item_marks
    from flows.watermarking import preview_marks

    cfg = resolve(config, RunConfig, load_config).with_overrides(**{"output.url": output})
    check_readable(cfg.catalog.path, "catalog")
    generator = build_generator(cfg.generator.name, cfg.generator.params)
    with redacting(cfg):
        store = Store(cfg.output.url, cfg.output.storage_options)
        # The marks a run would use (its key's fingerprint, C2PA): the same item ids as the run.
        marks = item_marks(preview_marks(cfg.watermark), cfg.provenance)
        plan = planning.build_plan(cfg, generator, store, marks=marks)
        return {"dry_run": True, **planning.preview(plan, store, max_failed)}


def validate_dataset(
    input_url: str,
    output: str,
    config: str | dict[str, Any] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run the validate flow over an existing dataset; returns the manifest (raises GateFailed,
    which carries the manifest, when the dataset fails its gate)."""
    from flows.validate import validate_flow

    parsed = preflight_validate(input_url, output, config, dask_address)
    return _run_flow(
        validate_flow,
        parsed,
        config,
        {"input_url": input_url, "output": output},
        dask_address=dask_address,
        workers=workers,
    )


def train_model(
    config: str | dict[str, Any], output: str, dask_address: str | None = None
) -> dict[str, Any]:
    """Train, log and register a generator model (train flow); returns version and aliases."""
    from flows.train import train_flow

    parsed = preflight_train(config, output, dask_address)
    return _run_flow(train_flow, parsed, config, {"output": output}, dask_address=dask_address)


def compare_generators(
    config: str | dict[str, Any],
    output: str,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Compare generators or model versions on the same prompts (compare flow); may move an alias."""
    from audio_synth_core.config.compare import CompareConfig
    from flows.compare import compare_flow

    if isinstance(config, CompareConfig):
        config = config.model_dump(mode="json")
    parsed = preflight_compare(config, output, dask_address)
    return _run_flow(
        compare_flow,
        parsed,
        config,
        {"output": output},
        dask_address=dask_address,
        workers=workers,
    )


def voices(generator: str = "espeak", params: dict[str, Any] | None = None) -> list[VoiceInfo]:
    """Voices the generator offers."""
    return build_generator(generator, params).voices()


def read_items(output: str, run_id: str | None = None, **storage_options: Any) -> pd.DataFrame:
    """Item metadata of a run under ``output`` (default: its last complete run)."""
    return runs.read_items(Store(output, storage_options), run_id)


def read_manifest(output: str, run_id: str | None = None, **storage_options: Any) -> dict[str, Any]:
    """The manifest of a run under ``output`` (default: its last complete run, of any kind)."""
    return runs.read_manifest(Store(output, storage_options), run_id)


def list_runs(output: str, **storage_options: Any) -> list[str]:
    """Run ids under ``output`` that have a manifest (complete runs)."""
    return runs.list_runs(Store(output, storage_options))


def collect_garbage(
    output: str,
    keep_runs: int = 1,
    dry_run: bool = False,
    tmp_grace_s: float = 3600.0,
    wait_s: float | None = 0.0,
    **storage_options: Any,
) -> dict[str, Any]:
    """Delete audio that none of the last ``keep_runs`` complete catalog runs (nor any run in
    progress, incomplete run, other kind of run or the quarantine) needs, and temporary files
    older than ``tmp_grace_s``; returns the files and bytes freed (``dry_run``: that would be).
    Waits ``wait_s`` for a run in progress, then raises LeaseError (see pipeline/gc.py)."""
    from audio_synth_core.pipeline import gc

    store = Store(output, storage_options)
    return gc.collect_garbage(store, keep_runs, dry_run, tmp_grace_s, wait_s)


# --- audiobook API ---


def narrate_books(
    book_or_folder: str,
    output: str | None = None,
    config: str | dict[str, Any] | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Narrate a book (EPUB, Markdown, text, or a folder with book.yaml) or a folder/bucket of
    books into chapter FLAC/MP3/WebVTT files, credits, a retail sample, an M4B and book.json per
    book; returns the run manifest (raises GateFailed, carrying it, when a file fails ACX).
    ``config``: a YAML path or mapping of ``AudiobookConfig`` (default: its defaults)."""
    from audio_synth_core.config.audiobook import AudiobookConfig, load_audiobook_config
    from flows.audiobook import audiobook_flow, preflight_audiobook
    from flows.prepare import resolve

    if isinstance(config, AudiobookConfig):
        config = config.model_dump(mode="json")
    with _consent_left_to_the_run():
        preflight_audiobook(book_or_folder, output, config, dask_address, workers)
    return _run_flow(
        audiobook_flow,
        resolve(config or {}, AudiobookConfig, load_audiobook_config),
        config,
        {"book_or_folder": book_or_folder, "output": output},
        dask_address=dask_address,
        workers=workers,
    )


@contextlib.contextmanager
def _consent_left_to_the_run() -> Iterator[None]:
    """A consent error in pre-flight is left to the run (the checks after it run there too):
    the run first withholds what its previous run made with a revoked voice, then fails with
    the same ConsentError, before any generation."""
    from audio_synth_core.voices.consent import ConsentError

    with contextlib.suppress(ConsentError):
        yield


# --- dataset API ---


def preflight_dataset(
    spec: Any,
    output: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> Any:
    """Everything a dataset run can check before any server starts: the spec, its text sources
    (non-empty), voices and parameters (exist, can vary per item), the augmentation's noise
    folder, the plan itself (impossible balance or split constraints), the scheduler and the
    output. Returns the plan (deterministic; the flow makes it again)."""
    from audio_synth_core.config.dataset import DatasetSpec, load_spec
    from audio_synth_core.dataset.augment import preflight_augmentation
    from audio_synth_core.dataset.plan import build_plan
    from audio_synth_core.voices import personas
    from flows.prepare import check_scheduler, open_store, resolve_run
    from flows.signing import item_marks
    from flows.watermarking import preview_marks

    cfg = resolve_run(spec, DatasetSpec, load_spec, output, dask_address, workers)
    generator = build_generator(cfg.generator.name, cfg.generator.params)
    if cfg.augmentation is not None:
        preflight_augmentation(cfg.augmentation)
    store = open_store(cfg.output.url, cfg.output.storage_options)
    registry = personas.registry_store(cfg.consent.registry_url, store)
    marks = item_marks(preview_marks(cfg.watermark), cfg.provenance)
    plan = build_plan(cfg, generator, marks, registry)
    check_scheduler(cfg.compute.dask_address)
    return plan


def preview_dataset(spec: Any, output: str | None = None) -> dict[str, Any]:
    """Plan a dataset run and return what it would make (rows, clean clips, shards, speakers,
    target vs planned share per group) without generating: no Prefect, Dask or MLflow, nothing
    written."""
    from audio_synth_core.config.dataset import DatasetSpec, load_spec
    from audio_synth_core.dataset.plan import build_plan
    from audio_synth_core.pipeline.runs import completed
    from audio_synth_core.voices import personas
    from flows.prepare import resolve_run
    from flows.signing import item_marks
    from flows.watermarking import preview_marks

    cfg = resolve_run(spec, DatasetSpec, load_spec, output)
    generator = build_generator(cfg.generator.name, cfg.generator.params)
    with redacting(cfg):
        store = Store(cfg.output.url, cfg.output.storage_options)
        registry = personas.registry_store(cfg.consent.registry_url, store)
        marks = item_marks(preview_marks(cfg.watermark), cfg.provenance)
        plan = build_plan(cfg, generator, marks, registry)
        return {
            "dry_run": True,
            "run_id": plan.run_id,
            "complete": completed(store, plan.run_id) is not None,
            "rows": len(plan.rows),
            "clean_clips": plan.items.num_rows,
            "shards": len(plan.shards),
            "speakers": len(plan.speakers),
            "report": plan.report,
        }


def synthesize_dataset(
    spec: Any,
    output: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Build a dataset from a spec (YAML path, mapping or ``DatasetSpec``; see docs/datasets.md)
    and return the run manifest: ``exports`` says where each format lives (``{"hf": {"path":
    rel, "files": [...], "counts": {split: n}}, ...}``, relative to the output root), ``card`` the
    dataset card, ``metrics``/``sizes``/``groups``/``rejection_rates``/``leak_check`` the numbers.
    ``dry_run``: only plan (``preview_dataset``)."""
    from audio_synth_core.config.dataset import DatasetSpec, load_spec
    from flows.prepare import resolve_run

    if dry_run:
        return preview_dataset(spec, output)
    from flows.dataset import dataset_flow

    if isinstance(spec, DatasetSpec):
        spec = spec.model_dump(mode="json")
    with _consent_left_to_the_run():  # other bad input fails before any server
        preflight_dataset(spec, output, dask_address, workers)
    return _run_flow(
        dataset_flow,
        resolve_run(spec, DatasetSpec, load_spec, output),
        spec,
        {"output": output},
        dask_address=dask_address,
        workers=workers,
    )


# --- responsible synthesis API (detect, verify, personas, consent) ---
# In flows/responsible_api.py (a module of its own), re-exported here.
from flows.responsible_api import (  # noqa: E402, F401
    consent_grant,
    consent_list,
    consent_revoke,
    consent_show,
    detect,
    personas_create,
    personas_export,
    personas_import,
    personas_list,
    personas_show,
    verify_output,
)
