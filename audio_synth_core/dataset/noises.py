"""Noise for augmentation: generated colours (no files) and clips from a user's noise folder.

Every generator takes an explicit seed, so a recorded ``{"type", "seed"}`` rebuilds the same
noise bit for bit. Colours follow the usual 1/f^beta power spectra (white 0, pink 1, brown 2),
shaped in the frequency domain over the whole clip. ``babble`` needs no recordings: it is ICRA-style
multi-talker noise (Dreschler et al. 2001), ``BABBLE_TALKERS`` streams of speech-shaped noise (the
long-term speech spectrum, -6 dB/octave above 500 Hz) each amplitude-modulated by a random syllabic
envelope (3-6 Hz), summed. It has speech's spectrum and modulation but no words: a user who needs
real babble puts recordings of it in the noise folder.

A noise folder is any fsspec URL or local path holding WAV/FLAC/OGG files; it is listed once per
process (sorted, so every worker sees the same order) and a file is picked by index from the item's
seed. Decoded noise files are cached per process (a small LRU), since many items share a few files.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import fsspec
import numpy as np
from scipy.fft import next_fast_len

from audio_synth_core.audio import decode, resample
from audio_synth_core.errors import ConfigError
from audio_synth_core.store.storage import object_store_options

GENERATED_TYPES = ("white", "pink", "brown", "babble")
NOISE_FILE_SUFFIXES = (".wav", ".flac", ".ogg")
_BETAS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
BABBLE_TALKERS = 6
# Below this the 1/f^beta shaping would blow up (brown noise's DC): the spectrum is held flat.
_LOW_HZ = 20.0


def colored_noise(n: int, rate: int, beta: float, seed: int) -> np.ndarray:
    """Unit-RMS noise of ``n`` samples whose power falls as 1/f^beta."""
    rng = np.random.default_rng(seed)
    if beta == 0.0 or n < 2:
        return _unit_rms(rng.standard_normal(n))
    m = next_fast_len(n, real=True)  # shaped at an FFT-friendly length, then cut to n
    spectrum = np.fft.rfft(rng.standard_normal(m))
    freqs = np.fft.rfftfreq(m, 1.0 / rate)
    spectrum *= np.maximum(freqs, _LOW_HZ) ** (-beta / 2.0)
    spectrum[0] = 0.0  # no DC offset
    return _unit_rms(np.fft.irfft(spectrum, m)[:n])


def babble_noise(n: int, rate: int, seed: int, talkers: int = BABBLE_TALKERS) -> np.ndarray:
    """Unit-RMS speech-shaped, syllabically modulated noise of several simulated talkers."""
    rng = np.random.default_rng(seed)
    m = next_fast_len(n, real=True)
    freqs = np.fft.rfftfreq(m, 1.0 / rate)
    # Long-term average speech spectrum, roughly: flat to 500 Hz, -6 dB/octave above, little
    # energy under 100 Hz.
    shape = np.where(freqs < 500.0, 1.0, 500.0 / np.maximum(freqs, 1.0))
    shape *= np.clip(freqs / 100.0, 0.0, 1.0)
    t = np.arange(n) / rate
    total = np.zeros(n)
    for _ in range(talkers):
        stream = np.fft.irfft(np.fft.rfft(rng.standard_normal(m)) * shape, m)[:n]
        syllable_hz = rng.uniform(3.0, 6.0)
        envelope = 0.5 * (1.0 + np.sin(2 * np.pi * syllable_hz * t + rng.uniform(0, 2 * np.pi)))
        total += _unit_rms(stream) * envelope**2 * rng.uniform(0.5, 1.0)
    return _unit_rms(total)


def generated_noise(kind: str, n: int, rate: int, seed: int) -> np.ndarray:
    if kind == "babble":
        return babble_noise(n, rate, seed)
    if kind not in _BETAS:
        raise ConfigError(f"unknown noise type {kind!r}; known: {', '.join(GENERATED_TYPES)}")
    return colored_noise(n, rate, _BETAS[kind], seed)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0
    return (x / rms if rms > 0 else x).astype(np.float64)


@lru_cache(maxsize=32)
def _listing(folder: str, options_key: str) -> tuple[str, ...]:
    options = _options_of(options_key)
    fs, root = fsspec.core.url_to_fs(folder, **object_store_options(folder, options))
    try:
        found = fs.find(root)
    except FileNotFoundError:
        found = []
    files = sorted(p for p in found if p.lower().endswith(NOISE_FILE_SUFFIXES))
    protocol = folder.split("://", 1)[0] if "://" in folder else None
    return tuple(f"{protocol}://{p}" if protocol else p for p in files)


def options_key(storage_options: dict[str, Any] | None) -> str:
    """A hashable, canonical form of storage options (for the per-process caches)."""
    return json.dumps(storage_options or {}, sort_keys=True, default=str)


def _options_of(key: str) -> dict[str, Any]:
    return json.loads(key)


def noise_files(folder: str, storage_options: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The noise files under ``folder`` (recursive, sorted URLs); a ConfigError when none."""
    files = _listing(folder, options_key(storage_options))
    if not files:
        raise ConfigError(
            f"noise folder {folder!r} holds no audio files ({', '.join(NOISE_FILE_SUFFIXES)})"
        )
    return files


@lru_cache(maxsize=16)
def _decoded(url: str, rate: int, options: str) -> np.ndarray:
    opts = object_store_options(url, _options_of(options))
    with fsspec.open(url, "rb", **opts) as fh:
        audio, file_rate = decode(fh.read(), url)
    return resample(audio, file_rate, rate).astype(np.float64)


def file_noise(
    url: str,
    n: int,
    rate: int,
    offset_fraction: float,
    storage_options: dict[str, Any] | None = None,
) -> np.ndarray:
    """Unit-RMS ``n`` samples of the noise file at ``url`` (resampled to ``rate``), starting at
    ``offset_fraction`` of the room left after the clip; a file shorter than the clip loops."""
    audio = _decoded(url, rate, options_key(storage_options))
    if len(audio) == 0 or not np.any(audio):
        raise ConfigError(f"noise file {url!r} is empty or silent")
    if len(audio) < n:
        audio = np.tile(audio, n // len(audio) + 1)
    start = int(offset_fraction * (len(audio) - n))
    return _unit_rms(audio[start : start + n])
