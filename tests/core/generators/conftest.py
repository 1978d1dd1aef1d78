"""Generator test fixtures: a per-test model cache, and ONNX bundles of tiny untrained models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.core.models.conftest import export_bundles


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    # Remote model folders are copied here, not into the working directory.
    monkeypatch.setenv("AUDIO_SYNTH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def onnx_bundles(tmp_path_factory) -> dict[str, tuple[Any, Path, Path | None]]:
    """Per decoder with noise (``vae``, ``diffusion``): the torch model and its fp32 bundle."""
    return export_bundles(tmp_path_factory.mktemp("onnx-bundles"), ("vae", "diffusion"), int8=False)
