"""The neural generator: any TTS model trained here, loaded from the MLflow registry
(``models:/name@alias`` or ``models:/name/3``), a run, or a saved directory.

The model loads once per worker process, items are synthesized in batches, and the GPU is used when
one is there (``device: auto``). Submit GPU work with ``compute.gpu_per_task`` so it lands on
workers that declare a ``GPU`` resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from audio_synth_core.errors import GenerationError
from audio_synth_core.generators.base import Generator, SynthesisRequest, VoiceInfo
from audio_synth_core.plugins.params import StrictParams, parse_params


class NeuralParams(StrictParams):
    """Which model (``models:/name@alias``, ``models:/name/3``, ``runs:/...`` or a folder), where
    it runs, how many items per forward pass, an optional vocoder swap, and the voice's language."""

    model_uri: str = Field(min_length=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(16, ge=1)
    vocoder: str | None = None
    language: str = "en-us"


@lru_cache(maxsize=4)
def _load(uri: str, device: str, vocoder: str | None):
    from audio_synth_core.models.registry import load_tts

    tts = load_tts(uri, device)
    return tts.with_vocoder(vocoder) if vocoder and vocoder != tts.vocoder_kind else tts


class NeuralGenerator(Generator):
    name: ClassVar[str] = "neural"

    def __init__(self, **params: Any) -> None:
        self.config = config = parse_params(NeuralParams, self.name, params, "generator")
        # Recorded exactly as given (item ids hash it), without defaults.
        super().__init__(**params)
        from audio_synth_core.models.registry import resolve_model_uri

        self._uri, self._version = resolve_model_uri(config.model_uri)
        device = config.device
        self._device = (
            ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        )
        self.batch_size = config.batch_size
        self.language = config.language

    def __getstate__(self) -> dict[str, Any]:
        return {"params": self.params, "_uri": self._uri, "_version": self._version}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**{**state["params"], "model_uri": state["_uri"]})

    @property
    def model(self):
        return _load(self._uri, self._device, self.config.vocoder)

    @property
    def version(self) -> str:
        return self._version

    @property
    def sample_rate_hz(self) -> int:
        return self.model.sample_rate_hz

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(name="default", language=self.language)]

    def generate(self, requests: Sequence[SynthesisRequest]) -> list[np.ndarray | Exception]:
        results: list[np.ndarray | Exception | None] = [None] * len(requests)
        todo = []
        for i, req in enumerate(requests):
            if not req.text.strip():
                results[i] = GenerationError("empty text")
            elif req.voice not in (None, "default"):
                results[i] = GenerationError(f"unknown voice {req.voice!r} for generator 'neural'")
            else:
                todo.append(i)
        tts = self.model
        # Stochastic decoders draw noise per batch: synthesize one item per call so an item's audio
        # depends only on its own seed; deterministic decoders batch freely.
        stochastic = tts.acoustic.config.decoder != "deterministic"
        step = 1 if stochastic else self.batch_size
        for start in range(0, len(todo), step):
            group = todo[start : start + step]
            try:
                clips = tts.synthesize(
                    [requests[i].text for i in group], seed=requests[group[0]].seed
                )
            except Exception as exc:  # a text the frontend cannot encode fails its items only
                for i in group:
                    results[i] = GenerationError(f"{type(exc).__name__}: {exc}")
                continue
            for i, clip in zip(group, clips, strict=True):
                results[i] = clip
        return results  # type: ignore[return-value]
