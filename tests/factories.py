"""Test data factories: real audio (espeak speech, tones, noise) and its degraded copies.

One place, so every test builds inputs the same way. Randomness comes from a seeded Generator.
"""

from __future__ import annotations

from functools import cache

import numpy as np


def tone(freq_hz: float = 440.0, seconds: float = 1.0, rate: int = 16000, dbfs: float = -12.0):
    t = np.arange(int(seconds * rate)) / rate
    amplitude = 10 ** (dbfs / 20) * np.sqrt(2)
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def white_noise(seconds: float = 1.0, rate: int = 16000, dbfs: float = -30.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * rate)) * 10 ** (dbfs / 20)).astype(np.float32)


def silence(seconds: float = 1.0, rate: int = 16000):
    return np.zeros(int(seconds * rate), dtype=np.float32)


def add_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise mixed in at exactly ``snr_db`` relative to the signal power."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(audio))
    p_signal = float(np.mean(audio.astype(np.float64) ** 2))
    noise *= np.sqrt(p_signal / (10 ** (snr_db / 10)) / np.mean(noise**2))
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


def hard_clip(audio: np.ndarray, gain_db: float = 20.0) -> np.ndarray:
    return np.clip(audio * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)


def with_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    return (audio * 10 ** (gain_db / 20)).astype(np.float32)


def with_dc(audio: np.ndarray, offset: float = 0.2) -> np.ndarray:
    return np.clip(audio + offset, -1.0, 1.0).astype(np.float32)


@cache
def _espeak(rate_wpm: int = 175):
    from audio_synth_core.generators.espeak import EspeakGenerator

    return EspeakGenerator(rate_wpm=rate_wpm)


def speech(text: str, voice: str = "en-us", rate_wpm: int = 175) -> tuple[np.ndarray, int]:
    """Real espeak-ng speech (float32 mono) and its sample rate."""
    from audio_synth_core.generators.base import SynthesisRequest

    gen = _espeak(rate_wpm)
    (audio,) = gen.generate([SynthesisRequest(text=text, voice=voice)])
    if isinstance(audio, Exception):
        raise audio
    return audio, gen.sample_rate_hz


SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back after lunch on Tuesday.",
    "This kettle boils a full litre of water in two minutes.",
    "Our store opens at nine in the morning every day.",
    "She sells sea shells by the sea shore.",
    "The library will be closed for the holiday weekend.",
    "A gentle breeze moved the tall grass near the river.",
    "Remember to water the plants before you leave.",
]
