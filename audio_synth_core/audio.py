"""Audio encoding, decoding and level statistics. Everything happens in memory: soundfile cannot
write FLAC into an s3fs handle (it seeks), so we encode to bytes and upload the bytes."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import pyloudnorm
import soundfile as sf

FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}

# A sample at or above this magnitude counts as clipped (int16 full scale is 32767/32768).
CLIP_LEVEL = 32767 / 32768
# Frames quieter than this are silence for silence_ratio (the ACX noise floor is -60 dB RMS).
SILENCE_DBFS = -60.0
FRAME_S = 0.02
_FLOOR = 1e-10


def encode(audio: np.ndarray, sample_rate_hz: int, fmt: str = "flac") -> bytes:
    """Encode float32 mono audio to FLAC or WAV (16-bit PCM) bytes; deterministic."""
    container, subtype = FORMATS[fmt]
    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate_hz, format=container, subtype=subtype)
    return buf.getvalue()


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


def integrated_lufs(audio: np.ndarray, sample_rate_hz: int) -> float | None:
    """BS.1770 integrated loudness (pyloudnorm); None when the clip is too short or silent."""
    meter = pyloudnorm.Meter(sample_rate_hz)
    if len(audio) < int(meter.block_size * sample_rate_hz):
        return None
    value = meter.integrated_loudness(audio.astype(np.float64))
    return float(value) if np.isfinite(value) else None


def levels(audio: np.ndarray, sample_rate_hz: int) -> Levels:
    """Peak, RMS, clipping ratio, silence ratio and integrated loudness of one clip."""
    if audio.size == 0:
        return Levels(to_db(0.0), to_db(0.0), 0.0, 1.0, None)
    absolute = np.abs(audio)
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    frames_db = 20.0 * np.log10(np.maximum(frame_rms(audio, sample_rate_hz), _FLOOR))
    return Levels(
        peak_dbfs=to_db(float(absolute.max())),
        rms_dbfs=to_db(rms),
        clipping_ratio=float(np.mean(absolute >= CLIP_LEVEL)),
        silence_ratio=float(np.mean(frames_db < SILENCE_DBFS)),
        integrated_lufs=integrated_lufs(audio, sample_rate_hz),
    )
