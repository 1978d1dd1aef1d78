"""Generators: one interface (``Generator``) for every speech engine or model."""

from audio_synth_core.generators.base import (
    Generator,
    SynthesisRequest,
    VoiceInfo,
    build_generator,
)

__all__ = ["Generator", "SynthesisRequest", "VoiceInfo", "build_generator"]
