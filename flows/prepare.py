"""What every flow does before its shards: resolve the config, apply command-line overrides, open
the output store, and build every plug-in once so a bad parameter fails before any work."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from audio_synth_core.config.models import ComputeConfig, ValidationConfig, parse_model
from audio_synth_core.errors import ConfigError
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import build_validator

M = TypeVar("M", bound=BaseModel)


def resolve(config: str | dict[str, Any] | M, model: type[M], load: Callable[[str], M]) -> M:
    """A config given as a model instance, a mapping or a YAML path."""
    if isinstance(config, model):
        return config
    if isinstance(config, dict):
        return parse_model(model, config)
    return load(config)


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
