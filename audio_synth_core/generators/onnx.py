"""``OnnxGenerator``: the project's own TTS model run from an ONNX export bundle with onnxruntime.

The bundle is loaded once per process and setting (``onnx_runtime.load_runtime``); the generator
object only carries its parameters. In ``generate`` each request draws its own noise from its seed
and is vocoded so that its batch neighbours cannot reach it: a clip does not depend on its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from audio_synth_core.errors import GenerationError, UnknownVoiceError
from audio_synth_core.generators.base import (
    Generator,
    SynthesisRequest,
    VoiceInfo,
    given_params_with_defaults,
)
from audio_synth_core.generators.onnx_runtime import CPU, OnnxTTS, load_runtime
from audio_synth_core.plugins.params import StrictParams, parse_params


class OnnxParams(StrictParams):
    """Where the bundle is and how onnxruntime runs it; see ``OnnxGenerator``."""

    model_url: str = Field(min_length=1)
    providers: list[str] = Field(default_factory=lambda: [CPU])
    threads: int = Field(1, ge=1)
    batch_size: int = Field(8, ge=1)
    length_scale: float | None = Field(None, gt=0)
    storage_options: dict[str, Any] | None = None


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "RuntimeException", "NotImplemented", "EPFail")
    return (MemoryError, *(getattr(state, n) for n in names if hasattr(state, n)))


class OnnxGenerator(Generator):
    """The project's TTS model from an ONNX export bundle (``export_onnx``), on onnxruntime.

    Parameters: ``model_url`` (required) a local folder or any fsspec URL of a bundle (copied to the
    local cache once per process); ``providers`` onnxruntime execution providers, default
    ``["CPUExecutionProvider"]`` (``CUDAExecutionProvider`` is used when asked for and present);
    ``threads`` intra-op threads per session (1); ``batch_size`` requests per forward pass (8);
    ``length_scale`` speaking-time factor, default the bundle's; ``storage_options`` for fsspec.

    One voice, ``default``, in the bundle's language. ``SynthesisRequest.seed`` seeds the request's
    own noise (VAE and diffusion decoders): the same request gives the same audio in any batch.
    """

    name: ClassVar[str] = "onnx"

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(OnnxParams, self.name, params, "generator")
        # Recorded as before (item ids hash it): the given values, the defaults of the others.
        recorded = given_params_with_defaults(OnnxParams, params)
        super().__init__(**{**recorded, "providers": list(self.config.providers)})

    def _runtime(self) -> OnnxTTS:
        c = self.config
        return load_runtime(c.model_url, c.providers, c.threads, c.storage_options)

    @property
    def version(self) -> str:
        return self._runtime().version

    @property
    def sample_rate_hz(self) -> int:
        return self._runtime().sample_rate_hz

    def voices(self) -> list[VoiceInfo]:
        rt = self._runtime()
        m = rt.manifest
        attributes = {
            "decoder": str(m["decoder"]),
            "vocoder": str(m["vocoder"]),
            "quantization": str((m.get("quantization") or {}).get("weight_type", "none")),
        }
        return [VoiceInfo(name="default", language=rt.language, attributes=attributes)]

    def generate(self, requests: Sequence[SynthesisRequest]) -> list[np.ndarray | Exception]:
        rt = self._runtime()
        out: list[np.ndarray | Exception | None] = [None] * len(requests)
        todo: list[tuple[int, list[int], int]] = []
        for i, request in enumerate(requests):
            try:
                if not request.text or not request.text.strip():
                    raise GenerationError("empty text")
                self.resolve_voice(request.voice or None, request.language)
                ids = rt.frontend.encode(request.text)
                if len(ids) <= 2:  # only the two boundary symbols
                    raise GenerationError(f"nothing speakable in {request.text!r}")
                todo.append((i, ids, request.seed))
            except (GenerationError, UnknownVoiceError) as exc:
                out[i] = exc
        # Similar lengths together: less padding; the order cannot change an item's audio.
        todo.sort(key=lambda item: len(item[1]))
        size = self.config.batch_size
        errors = _ort_errors()
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            try:
                audios = rt.synthesize(
                    [ids for _, ids, _ in chunk],
                    [seed for _, _, seed in chunk],
                    self.config.length_scale,
                )
            except errors as exc:
                for i, _, _ in chunk:
                    out[i] = GenerationError(f"onnxruntime failed on the batch: {exc}")
                continue
            for (i, _, _), audio in zip(chunk, audios, strict=True):
                out[i] = audio
        return out  # type: ignore[return-value]  # every slot is filled above
