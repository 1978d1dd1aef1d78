"""Voice anonymization transforms: pure functions of (audio, rate, params), randomness only from a
seeded ``numpy.random.Generator``.

Methods
- ``mcadams``: the VoicePrivacy 2020/2022 baseline B2 (Patino et al., "Speaker anonymisation using
  the McAdams coefficient", Interspeech 2021). Per 20 ms Hann frame (10 ms hop): LPC analysis
  (order 20, Burg, as ``librosa.lpc`` in the baseline), the angle phi of every complex pole is
  replaced by phi ** alpha (magnitude kept, so the filter stays stable), the LPC residual is
  re-filtered through the new all-pole filter, and frames are overlap-added with sqrt-Hann
  analysis and synthesis windows. Differences from the baseline script, all deliberate: the first
  frame and the tail are processed too (the script drops them), conjugate pairs are found by the
  sign of the imaginary part (the script assumes np.roots' ordering), the output keeps the input's
  RMS level instead of being peak-normalized to 1.0 (peaks capped at 0.99), frames under -100 dBFS
  pass through (Burg LPC blows up on near-silence) and rebuilt poles are kept inside radius 0.9995.
  It runs at the clip's own sample rate (B2 ran at 16 kHz: at 22.05 kHz the same alpha moves the
  formants a little differently).
- ``mcadams_random``: McAdams with alpha drawn per utterance from [alpha_min, alpha_max]. A fixed
  alpha is one deterministic voice-to-voice map, so a "lazy-informed" attacker who anonymizes
  enrollment audio the same way re-identifies speakers; a random alpha per utterance breaks that.
- ``shift_mcadams``: pitch and formants moved together by resampling (factor ``shift`` > 1 raises
  both, like a shorter vocal tract), duration restored by a phase-vocoder time stretch, then
  McAdams with a random alpha. The strongest method measured here (see ``PRIVACY_LEVELS``).

``draw_params(spec, rng)`` turns a level or method spec into concrete JSON-serializable parameters
(random ranges drawn), ``apply_params(audio, rate, params)`` applies them: a stored parameter dict
reproduces an output exactly. ``anonymize(audio, rate, level, rng)`` does both.

Vectorized over frames, ``mcadams`` matches a port of the B2 script to a correlation of 1.0 - 1e-12
while running ~45x faster (0.07 s for 5 s of 16 kHz speech vs 3.2 s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import librosa
import numpy as np
import scipy.signal

from audio_synth_core.errors import ConfigError

# Privacy levels: which transform and which parameter ranges, chosen with
# benchmarks/anonymization.py (resemblyzer verifier; 8 speakers: flite awb/kal/rms/slt + 4 espeak
# variants; 10 Harvard sentences each, 3 enroll). Measured EER ignorant / lazy-informed, corpus WER
# (pocketsphinx, run LM; 0.011 before anonymization), real-time factor on one busy core:
#   none      0.000 / 0.000   WER 0.011
#   low       0.133 / 0.000   WER 0.116   RTF 0.020   B2 as published (alpha 0.8)
#   medium    0.339 / 0.214   WER 0.311   RTF 0.021   alpha random per utterance in [0.5, 0.9]
#   high      0.375 / 0.324   WER 0.409   RTF 0.025   random +-12..25% resampling shift + medium
# (a fixed alpha 0.6 reached 0.495 ignorant but only 0.097 lazy-informed: a fixed map is learnable;
# a +-20..40% shift reached 0.464 / 0.339 at WER 0.58.)
PRIVACY_LEVELS: dict[str, dict[str, Any]] = {
    "low": {"method": "mcadams", "alpha": 0.8},
    "medium": {"method": "mcadams_random", "alpha_min": 0.5, "alpha_max": 0.9},
    "high": {
        "method": "shift_mcadams",
        "shift_min": 1.12,
        "shift_max": 1.25,
        "alpha_min": 0.5,
        "alpha_max": 0.9,
    },
}

_EPS = np.finfo(np.float32).eps
_PEAK_LIMIT = 0.99
# Frames quieter than this (RMS, about -100 dBFS) pass through untouched: Burg's LPC on near-digital
# silence is ill-conditioned (coefficients of 1e13 measured on resampled espeak pauses).
_SILENT_FRAME_RMS = 1e-5
# Rebuilt poles are kept strictly inside the unit circle so resynthesis can never blow up.
_MAX_POLE_RADIUS = 0.9995


def _frames(padded: np.ndarray, win: int, hop: int) -> np.ndarray:
    count = 1 + (len(padded) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(count)[:, None]
    return padded[idx]


def _poly_from_roots(roots: np.ndarray) -> np.ndarray:
    """Monic polynomials (frames, order+1) from their roots (frames, order): batched np.poly."""
    coefs = np.zeros((roots.shape[0], roots.shape[1] + 1), dtype=np.complex128)
    coefs[:, 0] = 1.0
    for k in range(roots.shape[1]):
        coefs[:, 1 : k + 2] = coefs[:, 1 : k + 2] - roots[:, k : k + 1] * coefs[:, : k + 1]
    return coefs.real


def _lpc_roots(a: np.ndarray) -> np.ndarray:
    """Roots of each row's LPC polynomial, via eigenvalues of batched companion matrices."""
    frames, order = a.shape[0], a.shape[1] - 1
    companion = np.zeros((frames, order, order))
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    return np.linalg.eigvals(companion)


def _match_level(out: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale ``out`` to the RMS of ``reference``, then down if needed so peaks stay below 0.99."""
    ref_rms = float(np.sqrt(np.mean(np.square(reference, dtype=np.float64))))
    out_rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64))))
    if out_rms > 0:
        out = out * (ref_rms / out_rms)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > _PEAK_LIMIT:
        out = out * (_PEAK_LIMIT / peak)
    return out.astype(np.float32)


def warp_poles(
    audio: np.ndarray,
    sample_rate_hz: int,
    warp: Callable[[np.ndarray], np.ndarray],
    *,
    win_ms: float = 20.0,
    hop_ms: float = 10.0,
    lpc_order: int = 20,
) -> np.ndarray:
    """LPC analysis/resynthesis with every complex pole angle phi in (0, pi) mapped by ``warp``.

    The frame-wise LPC, the companion-matrix roots, the pole mapping, the residual FIR and the
    polynomial rebuild are vectorized over frames; only the all-pole resynthesis loops (scipy).
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {x.shape}")
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)
    win = int(np.floor(win_ms * 0.001 * sample_rate_hz))
    hop = int(np.floor(hop_ms * 0.001 * sample_rate_hz))
    if win <= lpc_order or hop < 1 or hop > win:
        raise ValueError(f"bad framing: {win} samples per window, hop {hop}, order {lpc_order}")
    hann = np.hanning(win)
    # sqrt-Hann on analysis and synthesis: their product, scaled by the overlap, sums to ~1.
    window = np.sqrt(hann / (hann.sum() / hop))
    # Pad so that every input sample, first and last included, is covered by full overlap.
    pad_front = win - hop
    padded = np.concatenate([np.zeros(pad_front), x + _EPS, np.zeros(win)])
    frames = _frames(padded, win, hop) * window
    a = librosa.lpc(frames, order=lpc_order, axis=-1)
    silent = np.sqrt(np.mean(np.square(frames), axis=1)) < _SILENT_FRAME_RMS
    keep = silent | ~np.isfinite(a).all(axis=1)
    a[keep] = np.eye(1, lpc_order + 1)  # identity filter: the frame passes through unchanged
    roots = _lpc_roots(a)
    angles = np.angle(roots)
    complex_pole = np.abs(roots.imag) > 1e-12
    new_angles = np.clip(warp(np.abs(angles)), 0.0, np.pi) * np.sign(angles)
    radius = np.minimum(np.abs(roots), _MAX_POLE_RADIUS)
    real_roots = np.clip(roots.real, -_MAX_POLE_RADIUS, _MAX_POLE_RADIUS)
    new_roots = np.where(complex_pole, radius * np.exp(1j * new_angles), real_roots)
    a_new = _poly_from_roots(new_roots)
    a_new[keep] = np.eye(1, lpc_order + 1)
    # Residual e[n] = sum_k a[k] x[n-k] within each frame (zero initial state, as the baseline).
    residual = np.zeros_like(frames)
    for k in range(lpc_order + 1):
        residual[:, k:] += a[:, k : k + 1] * frames[:, : win - k]
    out = np.zeros(len(padded))
    for m in range(len(frames)):
        rebuilt = scipy.signal.lfilter([1.0], a_new[m], residual[m]) * window
        out[m * hop : m * hop + win] += rebuilt
    return _match_level(out[pad_front : pad_front + len(x)], np.asarray(audio))


def mcadams(
    audio: np.ndarray,
    sample_rate_hz: int,
    alpha: float = 0.8,
    *,
    win_ms: float = 20.0,
    hop_ms: float = 10.0,
    lpc_order: int = 20,
) -> np.ndarray:
    """VoicePrivacy B2: pole angles phi -> phi ** alpha; same length and RMS as the input."""
    if not 0.0 < alpha <= 2.0:
        raise ValueError(f"McAdams alpha must be in (0, 2], got {alpha}")
    return warp_poles(
        audio,
        sample_rate_hz,
        lambda phi: np.power(phi, alpha),
        win_ms=win_ms,
        hop_ms=hop_ms,
        lpc_order=lpc_order,
    )


def resample_shift(audio: np.ndarray, sample_rate_hz: int, shift: float) -> np.ndarray:
    """Pitch and formants scaled together by ``shift`` (resampling), length kept (time stretch).

    Resampling to rate/shift and playing at the original rate scales every frequency by ``shift``
    and the duration by 1/shift; a phase-vocoder stretch (512-point STFT, ~23 ms at 22.05 kHz:
    short enough for speech) restores the duration. Several times faster than torchaudio's
    pitch_shift, which also keeps formants and so changes the voice less.
    """
    if not 0.5 <= shift <= 2.0:
        raise ValueError(f"shift must be in [0.5, 2], got {shift}")
    x = np.asarray(audio, dtype=np.float32)
    if x.size == 0 or shift == 1.0:
        return x.copy()
    shifted = librosa.resample(x, orig_sr=sample_rate_hz, target_sr=sample_rate_hz / shift)
    n_fft = 1 << int(np.round(np.log2(0.023 * sample_rate_hz)))
    stretched = librosa.effects.time_stretch(
        shifted, rate=len(shifted) / len(x), n_fft=n_fft, hop_length=n_fft // 4
    )
    return _match_level(librosa.util.fix_length(stretched, size=len(x)), x)


def _check_range(params: Mapping[str, Any], low: str, high: str) -> tuple[float, float]:
    lo, hi = float(params[low]), float(params[high])
    if lo > hi:
        raise ConfigError(f"{low}={lo} is greater than {high}={hi}")
    return lo, hi


def draw_params(spec: str | Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Concrete, JSON-serializable parameters for one utterance.

    ``spec`` is a level name ("low", "medium", "high") or a method spec such as
    ``{"method": "mcadams_random", "alpha_min": 0.5, "alpha_max": 0.9}``; random ranges are drawn
    from ``rng``. The result is what ``apply_params`` needs and what a metadata row should store.
    """
    if isinstance(spec, str):
        if spec not in PRIVACY_LEVELS:
            raise ConfigError(f"unknown privacy level {spec!r}; known: {sorted(PRIVACY_LEVELS)}")
        spec = PRIVACY_LEVELS[spec]
    method = spec.get("method")
    allowed = {
        "none": set(),
        "mcadams": {"alpha"},
        "mcadams_random": {"alpha_min", "alpha_max"},
        "shift_mcadams": {"shift_min", "shift_max", "alpha_min", "alpha_max"},
    }
    if method not in allowed:
        raise ConfigError(f"unknown anonymization method {method!r}; known: {sorted(allowed)}")
    unknown = set(spec) - allowed[method] - {"method"}
    if unknown:
        raise ConfigError(f"unknown parameters for {method!r}: {sorted(unknown)}")
    if method == "none":
        return {"method": "none"}
    if method == "mcadams":
        return {"method": "mcadams", "alpha": float(spec.get("alpha", 0.8))}
    alpha = float(rng.uniform(*_check_range(spec, "alpha_min", "alpha_max")))
    if method == "mcadams_random":
        return {"method": "mcadams", "alpha": alpha}
    shift = float(rng.uniform(*_check_range(spec, "shift_min", "shift_max")))
    # Up or down with equal odds: output voices spread around the input instead of all moving up.
    if rng.random() < 0.5:
        shift = 1.0 / shift
    return {"method": "shift_mcadams", "shift": shift, "alpha": alpha}


def apply_params(audio: np.ndarray, sample_rate_hz: int, params: Mapping[str, Any]) -> np.ndarray:
    """Apply concrete parameters from ``draw_params``; deterministic, same length as the input."""
    method = params.get("method")
    if method == "none":
        return np.asarray(audio, dtype=np.float32).copy()
    if method == "mcadams":
        return mcadams(audio, sample_rate_hz, float(params["alpha"]))
    if method == "shift_mcadams":
        shifted = resample_shift(audio, sample_rate_hz, float(params["shift"]))
        return mcadams(shifted, sample_rate_hz, float(params["alpha"]))
    raise ConfigError(f"unknown anonymization method {method!r} in params {dict(params)}")


def anonymize(
    audio: np.ndarray,
    sample_rate_hz: int,
    level: str | Mapping[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Anonymized audio and the concrete parameters used (store them to reproduce the output)."""
    params = draw_params(level, rng)
    return apply_params(audio, sample_rate_hz, params), params
