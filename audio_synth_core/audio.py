"""Audio encoding, decoding and level statistics. Everything happens in memory: soundfile cannot
write FLAC into an s3fs handle (it seeks), so we encode to bytes and upload the bytes."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import soundfile as sf
from scipy.signal import sosfilt

FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}

# A sample at or above this magnitude counts as clipped (int16 full scale is 32767/32768).
CLIP_LEVEL = 32767 / 32768
# Frames quieter than this are silence for silence_ratio (the ACX noise floor is -60 dB RMS).
SILENCE_DBFS = -60.0
FRAME_S = 0.02
_FLOOR = 1e-10
# BS.1770-4 gating: 400 ms blocks every 100 ms (75 % overlap), -70 LUFS absolute gate, -10 LU
# relative gate, and the -0.691 dB offset that makes a 997 Hz sine at 0 dBFS read -3.01 LUFS.
LOUDNESS_BLOCK_S = 0.4
LOUDNESS_STEP = 0.25
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
_LUFS_OFFSET = -0.691


def encode(audio: np.ndarray, sample_rate_hz: int, fmt: str = "flac") -> bytes:
    """Encode float32 mono audio to FLAC or WAV (16-bit PCM) bytes; deterministic."""
    container, subtype = FORMATS[fmt]
    buf = io.BytesIO()
    sf.write(buf, as_pcm16(audio), sample_rate_hz, format=container, subtype=subtype)
    return buf.getvalue()


def as_pcm16(audio: np.ndarray) -> np.ndarray:
    """The int16 samples of audio that holds exact multiples of 1/32768 (espeak's output), else the
    audio unchanged. libsndfile 1.2 scales float by 32768 and rounds, so both give the same bytes
    (tests/core/test_audio.py), but handing it int16 skips its conversion: FLAC 20 % faster."""
    if audio.dtype != np.float32 or audio.ndim != 1:
        return audio
    scaled = audio * np.float32(32768.0)
    with np.errstate(invalid="ignore"):  # NaN or inf: the comparison below rejects them
        pcm = scaled.astype(np.int16)
    # Exact float comparison: any fraction, or 1.0 (which wraps to -32768), keeps the float path.
    return pcm if np.array_equal(pcm, scaled) else audio


class AudioDecodeError(ValueError):
    """Bytes that are not decodable audio; the message names where they came from."""


def decode(data: bytes, source: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Decode audio bytes to float32 mono in [-1, 1] (channels averaged) and the sample rate.

    ``source`` (a path or URL) names the bytes in the AudioDecodeError raised for undecodable
    input; libsndfile alone would name only an in-memory buffer object.
    """
    if not data:
        raise AudioDecodeError(f"cannot decode {source}: empty file (0 bytes)")
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except sf.SoundFileError as exc:
        detail = getattr(exc, "error_string", None) or str(exc)
        raise AudioDecodeError(f"cannot decode {source}: {detail}") from exc
    return audio.mean(axis=1), int(rate)


def resample(audio: np.ndarray, rate_hz: int, target_hz: int) -> np.ndarray:
    """High-quality resampling with libsoxr (a no-op at the target rate)."""
    if rate_hz == target_hz:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), rate_hz, target_hz, quality="HQ")


def to_db(value: float) -> float:
    return float(20.0 * np.log10(max(value, _FLOOR)))


@dataclass(frozen=True)
class Levels:
    """Basic level statistics stored with every item."""

    peak_dbfs: float
    rms_dbfs: float
    clipping_ratio: float
    silence_ratio: float
    integrated_lufs: float | None

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def frame_rms(audio: np.ndarray, sample_rate_hz: int, frame_s: float = FRAME_S) -> np.ndarray:
    """RMS of consecutive non-overlapping frames (the last partial frame is dropped)."""
    n = max(1, int(sample_rate_hz * frame_s))
    usable = (len(audio) // n) * n
    if usable == 0:
        return np.sqrt(np.mean(np.square(audio, dtype=np.float64), keepdims=True))
    frames = audio[:usable].astype(np.float64).reshape(-1, n)
    return np.sqrt(np.mean(np.square(frames), axis=1))


@lru_cache(maxsize=16)
def k_weighting_sos(sample_rate_hz: int) -> np.ndarray:
    """BS.1770 K-weighting as second-order sections: the +4 dB high shelf at 1500 Hz (Q 1/sqrt 2)
    then the 38 Hz high-pass (Q 0.5), both designed with the RBJ cookbook at any rate, the design
    pyloudnorm uses (at 48 kHz it reproduces the standard's tabulated coefficients)."""
    gain = 10 ** (4.0 / 40.0)
    w0 = 2.0 * np.pi * 1500.0 / sample_rate_hz
    alpha = np.sin(w0) / (2.0 * (1.0 / np.sqrt(2.0)))
    cos, root = np.cos(w0), 2.0 * np.sqrt(gain) * alpha
    shelf_b = [
        gain * ((gain + 1) + (gain - 1) * cos + root),
        -2 * gain * ((gain - 1) + (gain + 1) * cos),
        gain * ((gain + 1) + (gain - 1) * cos - root),
    ]
    shelf_a = [
        (gain + 1) - (gain - 1) * cos + root,
        2 * ((gain - 1) - (gain + 1) * cos),
        (gain + 1) - (gain - 1) * cos - root,
    ]
    w0 = 2.0 * np.pi * 38.0 / sample_rate_hz
    alpha, cos = np.sin(w0) / (2.0 * 0.5), np.cos(w0)
    pass_b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
    pass_a = [1 + alpha, -2 * cos, 1 - alpha]
    sections = [np.concatenate([shelf_b, shelf_a]) / shelf_a[0]]
    sections.append(np.concatenate([pass_b, pass_a]) / pass_a[0])
    sos = np.array(sections)
    sos.flags.writeable = False  # shared through the cache
    return sos


def _block_bounds(n_samples: int, sample_rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample bounds of the gating blocks, rounded exactly as pyloudnorm rounds them."""
    block_s = LOUDNESS_BLOCK_S
    n_blocks = int(np.round((n_samples / sample_rate_hz - block_s) / (block_s * LOUDNESS_STEP))) + 1
    j = np.arange(n_blocks, dtype=np.float64)
    lower = (block_s * (j * LOUDNESS_STEP) * sample_rate_hz).astype(np.int64)
    upper = (block_s * (j * LOUDNESS_STEP + 1) * sample_rate_hz).astype(np.int64)
    return lower, np.minimum(upper, n_samples)


_DITHER = np.zeros(0, dtype=np.float32)
# Far below anything audible or gated (-230 LUFS), far above float32's subnormal range.
_DITHER_AMPLITUDE = 1e-12


def _dither(n: int) -> np.ndarray:
    """A +-1e-12 Nyquist-rate pattern of n samples (a shared, growing, read-only buffer)."""
    global _DITHER
    if len(_DITHER) < n:
        pattern = np.full(max(n, 2 * len(_DITHER), 1 << 18), _DITHER_AMPLITUDE, np.float32)
        pattern[1::2] *= -1
        pattern.flags.writeable = False
        _DITHER = pattern
    return _DITHER[:n]


def _loudness_of(audio: np.ndarray, sample_rate_hz: int) -> float | None:
    # One sosfilt pass (a C loop over both biquads) in float32: its rounding is ~1e-7 relative,
    # far below the 0.01 LU that loudness is reported to. In exact digital silence the filter
    # state would decay into subnormal floats, which made the filter 5x slower on espeak speech
    # (20 % zeros): the tiny dither keeps it out of that range.
    sos = k_weighting_sos(sample_rate_hz).astype(np.float32)
    weighted = sosfilt(sos, audio + _dither(len(audio)))
    lower, upper = _block_bounds(len(audio), sample_rate_hz)
    # Block energies from the sums between consecutive distinct bounds (every sample squared and
    # added once), then a running sum over those few segments: its rounding (~1e-16 of the clip's
    # energy) only reaches blocks 150 dB below the clip, which the relative gate drops anyway.
    edges, where = np.unique(np.concatenate([lower, upper]), return_inverse=True)
    squared = np.square(weighted[: edges[-1]], dtype=np.float64)
    segments = np.add.reduceat(squared, edges[:-1]) if len(edges) > 1 else np.zeros(0)
    cumulative = np.concatenate([[0.0], np.cumsum(segments)])
    lo, hi = where[: len(lower)], where[len(lower) :]
    energy = (cumulative[hi] - cumulative[lo]) / (LOUDNESS_BLOCK_S * sample_rate_hz)
    with np.errstate(divide="ignore", invalid="ignore"):
        block_lufs = _LUFS_OFFSET + 10.0 * np.log10(energy)
    above = block_lufs >= ABSOLUTE_GATE_LUFS
    if not above.any():
        return None
    relative = _LUFS_OFFSET + 10.0 * np.log10(energy[above].mean()) + RELATIVE_GATE_LU
    gated = (block_lufs > relative) & (block_lufs > ABSOLUTE_GATE_LUFS)
    if not gated.any():
        return None
    value = _LUFS_OFFSET + 10.0 * np.log10(energy[gated].mean())
    return float(value) if np.isfinite(value) else None


def integrated_lufs(audio: np.ndarray, sample_rate_hz: int) -> float | None:
    """BS.1770-4 integrated loudness (mono), vectorized: K-weighting with ``scipy.signal.sosfilt``,
    400 ms block energies, absolute then relative gate. Agrees with pyloudnorm to 0.01 LU
    (tests/core/test_audio.py); None when the clip is shorter than one block or silent."""
    if len(audio) < LOUDNESS_BLOCK_S * sample_rate_hz:
        return None
    return _loudness_of(np.asarray(audio, dtype=np.float32), sample_rate_hz)


def levels(audio: np.ndarray, sample_rate_hz: int) -> Levels:
    """Peak, RMS, clipping ratio, silence ratio and integrated loudness of one clip."""
    if audio.size == 0:
        return Levels(to_db(0.0), to_db(0.0), 0.0, 1.0, None)
    audio = np.asarray(audio)
    peak = float(max(audio.max(), -audio.min()))
    # Clipped samples exist only where the peak reaches the clip level: skip the count otherwise.
    clipped = 0
    if peak >= CLIP_LEVEL:
        clipped = int(np.count_nonzero(np.abs(audio) >= CLIP_LEVEL))
    # One pass of squares serves both the RMS and the 20 ms frames of the silence ratio.
    squared = np.square(audio, dtype=np.float64)
    n = max(1, int(sample_rate_hz * FRAME_S))
    usable = (len(audio) // n) * n
    if usable == 0:
        frame_power = np.array([squared.mean()])
        total = float(squared.sum())
    else:
        frame_sums = squared[:usable].reshape(-1, n).sum(axis=1)
        frame_power = frame_sums / n
        total = float(frame_sums.sum() + squared[usable:].sum())
    # frame dBFS < -60 (with the 1e-10 floor) is frame power < 1e-6.
    silent = frame_power < (10.0 ** (SILENCE_DBFS / 20.0)) ** 2
    return Levels(
        peak_dbfs=to_db(peak),
        rms_dbfs=to_db(float(np.sqrt(total / len(audio)))),
        clipping_ratio=clipped / len(audio),
        silence_ratio=float(np.mean(silent)),
        integrated_lufs=integrated_lufs(audio, sample_rate_hz),
    )
