"""The Python API: what a notebook user imports. Same operations as the ``audio-synth`` CLI.

from flows.api import run_catalog, voices, read_items
manifest = run_catalog("configs/catalog-demo.yaml", output="out/demo")
df = read_items("out/demo")
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pandas as pd

from audio_synth_core.config.models import RunConfig
from audio_synth_core.config.secrets import RedactingFilter, redact_text
from audio_synth_core.generators.base import VoiceInfo, build_generator
from audio_synth_core.pipeline import runs
from audio_synth_core.store.storage import Store
from flows.credentials import handoff, secrets_of
from flows.prepare import preflight_compare, preflight_run, preflight_train, preflight_validate
from flows.runtime import prefect_api

# Loggers whose handlers print or ship a run's logs (console, Prefect's API log handler).
_LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "flows", "audio_synth_core")


@contextlib.contextmanager
def _redacting(*configs: Any) -> Iterator[None]:
    """While a flow runs in this process: log records and the message of a raised exception
    carry no credential of ``configs`` (nor any secret environment variable's value)."""
    secrets = secrets_of(*configs)
    handlers = {h for name in _LOGGERS for h in logging.getLogger(name).handlers}
    log_filter = RedactingFilter(secrets)
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield
    except BaseException as exc:
        # The CLI prints str(exc), which is built from args for our errors and fsspec's/botocore's.
        with contextlib.suppress(AttributeError, TypeError):
            exc.args = tuple(redact_text(a, secrets) if isinstance(a, str) else a for a in exc.args)
        raise
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)


def _real_config(config: Any, load: Any) -> Any:
    """The parsed config behind a path (for its secrets); a bad file fails later, in the flow."""
    if not isinstance(config, str):
        return config
    try:
        return load(config)
    except Exception:  # the flow reports it with its own clear error
        return None


def _run_flow(
    flow_fn: Any, load: Any, config: Any, urls: dict[str, str | None], **options: Any
) -> dict[str, Any]:
    """Run ``flow_fn`` on the local (or PREFECT_API_URL's) Prefect API with redacted parameters:
    the real config and URLs travel in-process (flows.credentials), and logs and errors are
    scrubbed of their secrets while it runs."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(prefect_api())
        stack.enter_context(_redacting(_real_config(config, load), *urls.values()))
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
    from audio_synth_core.config.models import load_config
    from flows.catalog import catalog_flow

    if isinstance(config, RunConfig):
        config = config.model_dump(mode="json")
    preflight_run(config, output, dask_address, workers)  # bad input fails before any server
    return _run_flow(
        catalog_flow,
        load_config,
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

    cfg = resolve(config, RunConfig, load_config).with_overrides(**{"output.url": output})
    check_readable(cfg.catalog.path, "catalog")
    generator = build_generator(cfg.generator.name, cfg.generator.params)
    with _redacting(cfg):
        store = Store(cfg.output.url, cfg.output.storage_options)
        plan = planning.build_plan(cfg, generator, store)
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
    from audio_synth_core.config.models import load_validate_config
    from flows.validate import validate_flow

    preflight_validate(input_url, output, config, dask_address)
    return _run_flow(
        validate_flow,
        load_validate_config,
        config,
        {"input_url": input_url, "output": output},
        dask_address=dask_address,
        workers=workers,
    )


def train_model(
    config: str | dict[str, Any], output: str, dask_address: str | None = None
) -> dict[str, Any]:
    """Train, log and register a generator model (train flow); returns version and aliases."""
    from audio_synth_core.config.models import load_train_config
    from flows.train import train_flow

    preflight_train(config, output, dask_address)
    return _run_flow(
        train_flow, load_train_config, config, {"output": output}, dask_address=dask_address
    )


def compare_generators(
    config: str | dict[str, Any],
    output: str,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Compare generators or model versions on the same prompts (compare flow); may move an alias."""
    from audio_synth_core.config.compare import CompareConfig, load_compare_config
    from flows.compare import compare_flow

    if isinstance(config, CompareConfig):
        config = config.model_dump(mode="json")
    preflight_compare(config, output, dask_address)
    return _run_flow(
        compare_flow,
        load_compare_config,
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


# --- dataset API ---


# --- responsible synthesis API (detect, verify, personas, consent) ---
