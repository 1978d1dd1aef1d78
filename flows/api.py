"""The Python API: what a notebook user imports. Same operations as the ``audio-synth`` CLI.

from flows.api import run_catalog, voices, read_items
manifest = run_catalog("configs/catalog-demo.yaml", output="out/demo")
df = read_items("out/demo")
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from audio_synth_core.config.models import RunConfig
from audio_synth_core.generators.base import VoiceInfo, build_generator
from audio_synth_core.pipeline import runs
from audio_synth_core.store.storage import Store
from flows.runtime import prefect_api


def run_catalog(
    config: str | dict[str, Any] | RunConfig,
    output: str | None = None,
    dask_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run the catalog generation flow (starting a local Prefect API unless PREFECT_API_URL is
    set) and return the run manifest."""
    from flows.catalog import catalog_flow

    if isinstance(config, RunConfig):
        config = config.model_dump(mode="json")
    with prefect_api():
        return catalog_flow(config, output=output, dask_address=dask_address, workers=workers)


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

    with prefect_api():
        return validate_flow(input_url, output, config, dask_address=dask_address, workers=workers)


def train_model(
    config: str | dict[str, Any], output: str, dask_address: str | None = None
) -> dict[str, Any]:
    """Train, log and register a generator model (train flow); returns version and aliases."""
    from flows.train import train_flow

    with prefect_api():
        return train_flow(config, output, dask_address=dask_address)


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
    with prefect_api():
        return compare_flow(config, output, dask_address=dask_address, workers=workers)


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
