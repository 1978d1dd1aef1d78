"""Detecting the watermark in files: decode any common format, then look for the mark.

libsndfile reads WAV/FLAC/OGG (and MP3 where built with it); anything else (MP3, AAC/M4A, Opus)
goes through PyAV (FFmpeg), so a delivered or re-encoded copy can be checked as it is found.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from audio_synth_core import audio
from audio_synth_core.audio import AudioDecodeError
from audio_synth_core.watermark import THRESHOLD_Z, WatermarkKey, detect
from audio_synth_core.watermark.lookup import resolve

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".aiff", ".aif")


def decode_any(data: bytes, source: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate of an encoded file (libsndfile, else PyAV)."""
    try:
        return audio.decode(data, source)
    except AudioDecodeError as first:
        if not data:
            raise
        try:
            return _decode_av(data)
        except Exception as exc:  # PyAV's errors vary by format: report the file and both causes
            raise AudioDecodeError(f"{first} (FFmpeg: {exc})") from exc


def _decode_av(data: bytes) -> tuple[np.ndarray, int]:
    import av

    chunks, rate = [], None
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="mono")
        for frame in container.decode(stream):
            rate = frame.sample_rate
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    if not chunks or rate is None:
        raise ValueError("no audio frames")
    return np.concatenate(chunks).astype(np.float32), int(rate)


@dataclass(frozen=True)
class FileDetection:
    """Detection on one file, as the CLI and API report it."""

    path: str
    detected: bool
    confidence: float
    z: float
    payload: int | None
    duration_s: float | None
    error: str | None = None
    payload_margin: float = 0.0
    matches: list[dict[str, Any]] = field(default_factory=list)  # lookup rows the payload names

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "detected": self.detected,
            "confidence": round(self.confidence, 6),
            "z": round(self.z, 3),
            "payload": self.payload,
            "payload_margin": round(self.payload_margin, 2),
            "duration_s": self.duration_s,
            "error": self.error,
        }


def detect_file(
    data: bytes,
    path: str,
    key: WatermarkKey,
    threshold_z: float = THRESHOLD_Z,
    table: pa.Table | None = None,
) -> FileDetection:
    """Detection on one encoded file (its payload settled and mapped through ``table``, a lookup
    table, when given); an unreadable file is a result with its reason."""
    try:
        samples, rate = decode_any(data, path)
    except AudioDecodeError as exc:
        return FileDetection(path, False, 0.0, 0.0, None, None, str(exc))
    found = detect(samples, rate, key, threshold_z)
    payload, matches = resolve(table, found)
    return FileDetection(
        path,
        found.detected,
        found.confidence,
        found.z,
        payload,
        len(samples) / rate,
        payload_margin=found.payload_margin,
        matches=matches,
    )
