"""Shared inputs of the mastering tests: real espeak chunks written to a Store."""

from __future__ import annotations

from functools import cache

import numpy as np

from audio_synth_core.audio import encode
from audio_synth_core.generators.base import SynthesisRequest, build_generator
from audio_synth_core.mastering import Segment

SENTENCES = (
    "Chapter one. The river.",
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back after lunch on Tuesday.",
    "A gentle breeze moved the tall grass near the river.",
)
PAUSES = (1.5, 0.35, 0.9, 0.35)


@cache
def narrated(text: str) -> tuple[np.ndarray, int]:
    """Real espeak-ng speech of ``text`` (built once per test session)."""
    gen = build_generator("espeak")
    (audio,) = gen.generate([SynthesisRequest(text=text, voice="en-us")])
    if isinstance(audio, Exception):
        raise audio
    return audio, gen.sample_rate_hz


def write_chunks(store, texts=SENTENCES, pauses=PAUSES, fmt: str = "flac") -> list[Segment]:
    """Each text narrated into ``chunks/<n>.<fmt>`` of ``store``; the chapter's segments."""
    segments = []
    for n, (text, pause) in enumerate(zip(texts, pauses, strict=True)):
        audio, rate = narrated(text)
        rel = f"chunks/{n:03d}.{fmt}"
        store.write_bytes(rel, encode(audio, rate, fmt))
        segments.append(Segment(rel, text, pause))
    return segments
