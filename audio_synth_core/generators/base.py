"""The generator interface shared by espeak-ng, neural models and adapters.

A generator is built once per worker process from a JSON-serializable parameter dict, then asked to
synthesize batches of requests. It returns float32 mono audio in [-1, 1] at ``sample_rate_hz`` or,
per request, the exception that explains why that request failed: one bad item never fails a batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from audio_synth_core.errors import PluginError, UnknownVoiceError
from audio_synth_core.plugins import registry as plugins
from audio_synth_core.plugins.params import StrictParams


@dataclass(frozen=True)
class VoiceInfo:
    """One voice a generator offers. ``attributes`` feed the fairness breakdowns."""

    name: str
    language: str
    gender: str | None = None
    age_band: str | None = None
    accent: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SynthesisRequest:
    """What to say, in which voice; ``seed`` makes stochastic generators reproducible.

    ``params`` overrides the generator's own parameters for this request only (a dataset's
    "synthetic speaker" is a voice plus its pitch and rate); a generator that cannot vary a
    parameter per request returns a ValueError for that request.
    """

    text: str
    voice: str
    language: str | None = None
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)


class Generator(ABC):
    """Base class of every generator plug-in (entry-point group ``audio_synth.generators``).

    A subclass declares its parameters as a ``plugins.params.StrictParams`` model and checks them in
    ``__init__`` with ``parse_params(Model, self.name, params, "generator")`` (a ValueError names
    every unknown or invalid key) before calling ``super().__init__`` with the parameters it
    records (``describe()["params"]``, part of every item id).
    """

    name: ClassVar[str]
    # Parameters this generator can vary per request (SynthesisRequest.params); others fail the item.
    per_request_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    @property
    @abstractmethod
    def version(self) -> str:
        """Engine or model version recorded with every item (e.g. ``1.52`` or ``models:/tts/3``)."""

    @property
    @abstractmethod
    def sample_rate_hz(self) -> int:
        """Sample rate of the audio ``generate`` returns."""

    @abstractmethod
    def voices(self) -> list[VoiceInfo]:
        """Every voice this generator can speak with."""

    @abstractmethod
    def generate(self, requests: Sequence[SynthesisRequest]) -> list[np.ndarray | Exception]:
        """Synthesize a batch; element i is float32 mono audio or the exception for request i."""

    def resolve_voice(self, voice: str | None, language: str | None) -> VoiceInfo:
        """The voice to use for an item, or ``UnknownVoiceError`` naming what was asked for."""
        voices = self.voices()
        if voice:
            for v in voices:
                if v.name == voice:
                    return v
            raise UnknownVoiceError(f"unknown voice {voice!r} for generator {self.name!r}")
        if language:
            for v in voices:
                if v.language == language:
                    return v
            raise UnknownVoiceError(
                f"no voice for language {language!r} in generator {self.name!r}"
            )
        raise UnknownVoiceError("neither a voice nor a language was given")

    def describe(self) -> dict[str, Any]:
        """Name, version and parameters: stored with each item so any file can be regenerated."""
        return {"name": self.name, "version": self.version, "params": self.params}


def given_params_with_defaults(
    model: type[StrictParams], params: Mapping[str, Any]
) -> dict[str, Any]:
    """``params`` as given (not coerced), plus every parameter they leave out at its default, in
    the model's field order; call after ``parse_params`` accepted them. ``onnx`` and ``hf-vits``
    have always recorded their parameters this way (they go into item ids)."""
    return {
        name: params[name] if name in params else field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
    }


def build_generator(name: str, params: Mapping[str, Any] | None = None) -> Generator:
    """Build the generator registered as ``name`` with ``params``."""
    cls = plugins.load(plugins.GENERATORS, name)
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise PluginError(f"generator {name!r} does not subclass audio_synth_core Generator")
    return cls(**dict(params or {}))
