"""Generator models in the MLflow model registry: log, register, alias, load.

A ``TTSModel`` is logged with ``mlflow.pytorch`` as a ``TTSModule`` (acoustic model + vocoder as
one nn.Module, with the frontend and mel settings in its config) and a signature. Versions are
addressed by alias (``models:/name@champion``); registry stages are deprecated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from audio_synth_core.models.tts import TTSModel

# Explicit requirements make log_model ~4x faster (no environment inference) and honest.
PIP_REQUIREMENTS = ["torch==2.11.0", "audio-synth"]


class TTSModule(nn.Module):
    """A TTSModel as one module: ``forward(ids, lengths)`` -> padded audio ``[B, samples]``."""

    def __init__(self, tts: TTSModel) -> None:
        super().__init__()
        self.acoustic = tts.acoustic
        self.vocoder = tts.vocoder
        self.tts_config = tts.config()

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.to_tts().vocode(self.acoustic.infer(ids, lengths)[0])

    def __reduce__(self):
        # Weight-normed layers cannot be pickled as modules: pickle the config and state dicts.
        vocoder_state = self.vocoder.state_dict() if self.vocoder is not None else None
        return _rebuild, (self.tts_config, self.acoustic.state_dict(), vocoder_state)

    def to_tts(self, device: torch.device | str = "cpu") -> TTSModel:
        vocoder_state = self.vocoder.state_dict() if self.vocoder is not None else None
        return TTSModel.from_config(
            self.tts_config, self.acoustic.state_dict(), vocoder_state, device
        )


def _rebuild(config: dict[str, Any], acoustic_state: dict, vocoder_state: dict | None) -> TTSModule:
    return TTSModule(TTSModel.from_config(config, acoustic_state, vocoder_state))


def log_tts_model(
    tts: TTSModel, name: str = "model", registered_model_name: str | None = None
) -> Any:
    """Log (and optionally register) ``tts`` in the active MLflow run; returns the ModelInfo."""
    import mlflow
    from mlflow.models import infer_signature

    module = TTSModule(tts).cpu().eval()
    ids, lengths = tts.encode_texts(["hello world"])
    with torch.no_grad():
        audio = module(ids, lengths)
    signature = infer_signature(ids.numpy().astype(np.int64), audio.numpy().astype(np.float32))
    return mlflow.pytorch.log_model(
        module,
        name=name,
        signature=signature,
        registered_model_name=registered_model_name,
        pip_requirements=PIP_REQUIREMENTS,
        # The model's forward has data-dependent lengths: keep the module, not a traced graph.
        serialization_format="pickle",
    )


def resolve_model_uri(uri: str) -> tuple[str, str]:
    """(concrete URI, version label): an alias resolves to the version it names right now, so
    items record exactly which model made them."""
    if uri.startswith("models:/") and "@" in uri:
        from mlflow import MlflowClient

        name, alias = uri.removeprefix("models:/").split("@", 1)
        version = MlflowClient().get_model_version_by_alias(name, alias).version
        return f"models:/{name}/{version}", f"{name}/{version}"
    if uri.startswith("models:/"):
        return uri, uri.removeprefix("models:/")
    return uri, uri


def load_tts(uri: str, device: torch.device | str = "cpu") -> TTSModel:
    """A TTSModel from an MLflow model URI (models:/, runs:/) or a ``TTSModel.save`` directory."""
    if uri.startswith(("models:/", "runs:/")) or ("://" in uri and not uri.startswith("file://")):
        import mlflow

        module = mlflow.pytorch.load_model(uri, map_location="cpu")
        return module.to_tts(device)
    return TTSModel.load(uri.removeprefix("file://"), device)


def set_alias(name: str, alias: str, version: str | int) -> None:
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, str(version))
