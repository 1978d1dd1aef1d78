"""What every flow does before its shards: resolve the config, apply command-line overrides, open
the output store, and build every plug-in once so a bad parameter fails before any work."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import fsspec
from pydantic import BaseModel

from audio_synth_core.config.models import (
    ComputeConfig,
    RunConfig,
    TrainConfig,
    ValidateConfig,
    ValidationConfig,
    load_config,
    load_train_config,
    load_validate_config,
    parse_model,
)
from audio_synth_core.config.secrets import collect_secrets, redact_text
from audio_synth_core.errors import CatalogError, ConfigError
from audio_synth_core.generators.base import build_generator
from audio_synth_core.store.storage import Store, describe_error, object_store_options
from audio_synth_core.validators.base import build_validator

M = TypeVar("M", bound=BaseModel)


def resolve(config: str | dict[str, Any] | M, model: type[M], load: Callable[[str], M]) -> M:
    """A config given as a model instance, a mapping or a YAML path."""
    if isinstance(config, model):
        return config
    if isinstance(config, dict):
        return parse_model(model, config)
    return load(config)


def resolve_run(
    config: str | dict[str, Any] | M,
    model: type[M],
    load: Callable[[str], M],
    output: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> M:
    """A job's config (``resolve``) with the overrides every run command takes: ``--output``,
    ``--dask-address``, ``--workers``."""
    return resolve(config, model, load).with_overrides(  # type: ignore[attr-defined]
        **{"output.url": output, "compute.dask_address": dask_address, "compute.n_workers": workers}
    )


def with_compute(
    compute: ComputeConfig, dask_address: str | None, workers: int | None
) -> ComputeConfig:
    """``compute`` with the command line's ``--dask-address`` and ``--workers`` applied."""
    update = {"dask_address": dask_address, "n_workers": workers}
    return compute.model_copy(update={k: v for k, v in update.items() if v})


def open_store(url: str, storage_options: dict[str, Any] | None = None) -> Store:
    """The output store, checked writable (a missing bucket fails here, naming the URL)."""
    store = Store(url, storage_options)
    store.check_writable()
    return store


def validator_specs(cfg: ValidationConfig) -> str | None:
    """Validator specs as JSON for the workers, after building each once here."""
    if not cfg.enabled:
        return None
    specs = [spec.model_dump(mode="json") for spec in cfg.validators]
    try:
        for spec in specs:
            build_validator(spec["name"], spec["params"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid validation.validators: {exc}") from None
    return json.dumps(specs, sort_keys=True)


# Pre-flight: what the API and CLI check before starting Prefect, Dask or MLflow (10-20 s), so bad
# input fails in seconds with one clear error. The flows check the same again (a deployment runs
# them without this), which costs one small probe write.


def check_readable(url: str, what: str, storage_options: dict[str, Any] | None = None) -> None:
    """Fail with a CatalogError naming ``what`` and ``url`` when it does not exist or cannot be
    opened (a file is opened and one byte read; a folder is listed)."""
    options = object_store_options(url, dict(storage_options or {}), fail_fast=True)
    shown = redact_text(url, collect_secrets([url, storage_options or {}]))
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
        if not fs.exists(path):
            raise CatalogError(f"{what} {shown!r} does not exist")
        if fs.isdir(path):
            fs.ls(path, detail=False)
        else:
            with fs.open(path, "rb") as fh:
                fh.read(1)
    except CatalogError:
        raise
    except Exception as exc:  # fsspec backends raise many types; all mean "cannot read"
        reason = redact_text(describe_error(exc), collect_secrets([url, storage_options or {}]))
        raise CatalogError(f"cannot read {what} {shown!r}: {reason}") from None


def check_scheduler(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail with a ConfigError when ``--dask-address`` names a scheduler nobody answers at."""
    if not address or not address.startswith("tcp://"):
        return
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no Dask scheduler answers at {address!r}: {exc}") from None


def preflight_run(
    config: str | dict[str, Any] | BaseModel,
    output: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> RunConfig:
    """Everything a catalog run can check before any server starts: config, catalog, generator,
    validators, the scheduler and the output. Returns the parsed config."""
    cfg = resolve_run(config, RunConfig, load_config, output, dask_address, workers)
    check_readable(cfg.catalog.path, "catalog")
    build_generator(cfg.generator.name, cfg.generator.params)
    validator_specs(cfg.validation)
    check_scheduler(cfg.compute.dask_address)
    open_store(cfg.output.url, cfg.output.storage_options)
    return cfg


def preflight_validate(
    input_url: str,
    output: str,
    config: str | dict[str, Any] | None = None,
    dask_address: str | None = None,
) -> ValidateConfig:
    """The validate flow's config, validators, input, scheduler and output, checked up front."""
    cfg = resolve(config or {}, ValidateConfig, load_validate_config)
    validator_specs(cfg.validation)
    check_readable(input_url, "input", cfg.input_storage_options)
    check_scheduler(dask_address or cfg.compute.dask_address)
    open_store(output, cfg.output_storage_options)
    return cfg


def preflight_train(
    config: str | dict[str, Any], output: str, dask_address: str | None = None
) -> TrainConfig:
    """The train flow's config, corpus inputs, scheduler and output, checked up front."""
    cfg = resolve(config, TrainConfig, load_train_config)
    for url, what in ((cfg.corpus.texts_path, "corpus texts"), (cfg.corpus.dataset_url, "corpus")):
        if url:
            check_readable(url, what)
    check_scheduler(dask_address or cfg.compute.dask_address)
    open_store(output)
    return cfg


def preflight_compare(
    config: str | dict[str, Any] | BaseModel, output: str, dask_address: str | None = None
) -> BaseModel:
    """The compare flow's config, prompts, validators, scheduler and output, checked up front."""
    from audio_synth_core.config.compare import CompareConfig, load_compare_config

    cfg = resolve(config, CompareConfig, load_compare_config)
    if cfg.prompts_path:
        check_readable(cfg.prompts_path, "prompts")
    validator_specs(cfg.validation)
    check_scheduler(dask_address or cfg.compute.dask_address)
    open_store(output)
    return cfg
