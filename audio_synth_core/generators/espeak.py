"""``EspeakGenerator``: espeak-ng 1.52 in process (``espeak_engine``), voices from its voice table
(``espeak_voices``).

Generator objects only carry their parameters: they pickle cheaply and rebuild nothing when shipped
to a Dask worker; the engine is loaded once per process, on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BeforeValidator, Field

from audio_synth_core.errors import GenerationError, UnknownVoiceError
from audio_synth_core.generators import espeak_voices
from audio_synth_core.generators.base import Generator, SynthesisRequest, VoiceInfo
from audio_synth_core.generators.espeak_engine import (
    LOCK,
    PARAM_PITCH,
    PARAM_RANGE,
    PARAM_RATE,
    PARAM_VOLUME,
    PARAM_WORDGAP,
    VariantInfo,
    engine,
)
from audio_synth_core.plugins.params import StrictParams, parse_params


def _whole_float_to_int(value: Any) -> Any:
    """``175.0`` -> ``175``: a whole number that arrives as a float is still a setting."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


_Setting = BeforeValidator(_whole_float_to_int)


class EspeakParams(StrictParams):
    """espeak-ng's speech settings (integers, as ``espeak_SetParameter`` takes them)."""

    rate_wpm: Annotated[int, _Setting, Field(ge=80, le=450)] = 175
    pitch: Annotated[int, _Setting, Field(ge=0, le=99)] = 50
    pitch_range: Annotated[int, _Setting, Field(ge=0, le=99)] = 50
    volume: Annotated[int, _Setting, Field(ge=0, le=200)] = 100
    word_gap_10ms: Annotated[int, _Setting, Field(ge=0, le=100)] = 0


_PARAM_IDS = {
    "rate_wpm": PARAM_RATE,
    "pitch": PARAM_PITCH,
    "pitch_range": PARAM_RANGE,
    "volume": PARAM_VOLUME,
    "word_gap_10ms": PARAM_WORDGAP,
}


class EspeakGenerator(Generator):
    """espeak-ng formant synthesis: 141 voices x 104 variants, deterministic, ~1000x real time.

    Voice names are espeak language tags (``en-us``, ``en-gb``, ``de``, ``fr-fr``); aliases such as
    the voice file (``en``, ``gmw/en-US``) or display name also resolve. ``<voice>+<variant>``
    (``en-us+f3``, ``de+m7``) applies a variant from ``variants()``.

    Parameters: ``rate_wpm`` 80..450 (175), ``pitch`` 0..99 (50), ``pitch_range`` 0..99 (50),
    ``volume`` 0..200 (100), ``word_gap_10ms`` 0..100 (0). ``SynthesisRequest.seed`` is unused:
    the output depends only on text, voice and parameters.
    """

    name: ClassVar[str] = "espeak"
    per_request_params: ClassVar[frozenset[str]] = frozenset(EspeakParams.model_fields)

    def __init__(self, **params: Any) -> None:
        config = parse_params(EspeakParams, self.name, params, "generator")
        # espeak has always recorded every setting, defaults included, as an integer: the ids of
        # existing items hash exactly this dict.
        settings = config.model_dump()
        super().__init__(**settings)
        self._settings = {_PARAM_IDS[key]: value for key, value in settings.items()}

    @property
    def version(self) -> str:
        return engine().version

    @property
    def sample_rate_hz(self) -> int:
        return engine().sample_rate_hz

    def voices(self) -> list[VoiceInfo]:
        """The 141 base voices; combine any of them with a variant as ``<voice>+<variant>``."""
        return list(espeak_voices.catalog().voices)

    def variants(self) -> list[VariantInfo]:
        """The voice variants (m1-m8, f1-f5, klatt, whisper, ...) with their gender."""
        return list(engine().variants)

    def resolve_voice(self, voice: str | None, language: str | None) -> VoiceInfo:
        return espeak_voices.resolve_voice(voice, language)[0]

    def generate(self, requests: Sequence[SynthesisRequest]) -> list[np.ndarray | Exception]:
        espeak = engine()
        out: list[np.ndarray | Exception] = []
        for request in requests:
            try:
                if not request.text or not request.text.strip():
                    raise GenerationError("empty text")
                _info, selector = espeak_voices.resolve_voice(request.voice, request.language)
                settings = self._settings_for(request.params)
                with LOCK:
                    out.append(espeak.synth(request.text, selector, settings))
            except (GenerationError, UnknownVoiceError, ValueError) as exc:
                out.append(exc)
        return out

    def _settings_for(self, overrides: Mapping[str, Any]) -> dict[int, int]:
        """Engine settings with a request's overrides (checked like the generator's own)."""
        if not overrides:
            return self._settings
        merged = parse_params(EspeakParams, self.name, {**self.params, **overrides}, "generator")
        return {_PARAM_IDS[key]: value for key, value in merged.model_dump().items()}

    def phonemes(self, text: str, voice: str = "en-us", *, separator: str = "") -> str:
        """IPA for ``text`` as espeak would speak it: words separated by spaces, the phonemes
        inside a word joined by ``separator`` (one character or empty). Deterministic."""
        if len(separator) > 1:
            raise ValueError(f"separator must be one character or empty, got {separator!r}")
        _info, selector = espeak_voices.resolve_voice(voice, None)
        espeak = engine()
        with LOCK:
            return espeak.phonemes(text, selector, separator)
