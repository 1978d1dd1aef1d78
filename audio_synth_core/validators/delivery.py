"""Delivery profiles: named presets of a distributor's technical requirements (ACX for audiobooks).

``DeliveryValidator`` checks a clip against a profile; ``conform`` makes audio meet one (resample,
room tone at head and tail, RMS into range under a peak ceiling). ACX's rules, from its Audio
Submission Requirements: RMS -23 to -18 dB, peaks at most -3 dBFS, noise floor at most -60 dB RMS,
44.1 kHz, 0.5-1 s of room tone at the head and 1-5 s at the tail, at most 120 minutes per file.
RMS and peak are of the whole file, as ACX's own check (and Audacity's ACX Check) measure them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pydantic

from audio_synth_core.audio import frame_rms, levels, resample, to_db
from audio_synth_core.plugins.params import StrictParams, parse_params
from audio_synth_core.validators.base import CheckResult, Clip, MetricField, Validator
from audio_synth_core.validators.rules import (
    DURATION_S,
    PEAK_DBFS,
    RMS_DBFS,
    audio_problem,
    limit_check,
)

# Room tone is found with 10 ms frames; the noise floor is the quietest 0.5 s stretch.
ROOM_TONE_FRAME_S = 0.01
NOISE_WINDOW_S = 0.5
# A frame is room tone below this level, or 10 dB above the measured floor if that is higher
# (a noisy floor must not be mistaken for speech and hide the head and tail).
ROOM_TONE_DBFS = -50.0
ROOM_TONE_ABOVE_FLOOR_DB = 10.0


@dataclass(frozen=True)
class DeliveryProfile:
    """A distributor's technical requirements for one delivered file."""

    name: str
    sample_rate_hz: int
    min_rms_dbfs: float
    max_rms_dbfs: float
    max_peak_dbfs: float
    max_noise_floor_dbfs: float
    min_head_room_tone_s: float
    max_head_room_tone_s: float
    min_tail_room_tone_s: float
    max_tail_room_tone_s: float
    max_duration_s: float


PROFILES: dict[str, DeliveryProfile] = {
    "acx": DeliveryProfile(
        name="ACX",
        sample_rate_hz=44100,
        min_rms_dbfs=-23.0,
        max_rms_dbfs=-18.0,
        max_peak_dbfs=-3.0,
        max_noise_floor_dbfs=-60.0,
        min_head_room_tone_s=0.5,
        max_head_room_tone_s=1.0,
        min_tail_room_tone_s=1.0,
        max_tail_room_tone_s=5.0,
        max_duration_s=120 * 60.0,
    ),
}


def get_profile(name: str) -> DeliveryProfile:
    """The profile registered as ``name``; the error lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown delivery profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None


def noise_floor_dbfs(audio: np.ndarray, sample_rate_hz: int) -> float:
    """RMS level of the quietest ``NOISE_WINDOW_S`` stretch (the whole clip if shorter)."""
    power = np.square(frame_rms(audio, sample_rate_hz, ROOM_TONE_FRAME_S))
    n = round(NOISE_WINDOW_S / ROOM_TONE_FRAME_S)
    if power.size <= n:
        return to_db(float(np.sqrt(power.mean())))
    window_power = np.convolve(power, np.ones(n) / n, mode="valid")
    return to_db(float(np.sqrt(max(window_power.min(), 0.0))))


def room_tone_s(audio: np.ndarray, sample_rate_hz: int) -> tuple[float, float]:
    """Seconds of near-silence before the first and after the last sound (whole clip if none)."""
    frames_db = 20.0 * np.log10(
        np.maximum(frame_rms(audio, sample_rate_hz, ROOM_TONE_FRAME_S), 1e-10)
    )
    threshold = max(
        ROOM_TONE_DBFS, noise_floor_dbfs(audio, sample_rate_hz) + ROOM_TONE_ABOVE_FLOOR_DB
    )
    loud = np.nonzero(frames_db >= threshold)[0]
    duration = audio.size / sample_rate_hz
    if loud.size == 0:
        return duration, duration
    frame = int(sample_rate_hz * ROOM_TONE_FRAME_S) / sample_rate_hz
    head = loud[0] * frame
    tail = duration - (loud[-1] + 1) * frame
    return float(head), float(max(tail, 0.0))


def _limit_peaks(audio: np.ndarray, sample_rate_hz: int, ceiling: float) -> np.ndarray:
    """Look-ahead peak limiter: no sample exceeds ``ceiling``, gain changes over ~5 ms.

    The per-sample gain that would just meet the ceiling is spread by a minimum filter of radius
    R and then smoothed by a moving average of radius <= R. Every sample of that average's window
    already carries a gain at most the one its peak needs, so the ceiling holds exactly.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    magnitude = np.abs(audio).astype(np.float64)
    if magnitude.max() <= ceiling:
        return audio
    need = np.minimum(1.0, ceiling / np.maximum(magnitude, 1e-12))
    radius = max(1, int(0.005 * sample_rate_hz))
    gain = minimum_filter1d(need, size=2 * radius + 1, mode="nearest")
    gain = uniform_filter1d(gain, size=radius + 1 if radius % 2 == 0 else radius, mode="nearest")
    gain = np.minimum(gain, need)  # float rounding in the average must not lift a peak
    return (audio * gain).astype(np.float32)


def conform(
    audio: np.ndarray, sample_rate_hz: int, profile: str | DeliveryProfile = "acx"
) -> tuple[np.ndarray, int]:
    """Audio that meets ``profile``: resampled, room tone trimmed and padded, level set.

    The room tone added is digital silence (synthetic speech has no room to record). RMS is set
    to the middle of the profile's range, then peaks are limited under the ceiling (0.5 dB inside
    it, against resampling overshoot in later encoding); both steps repeat until the RMS holds.
    Raises ValueError for audio no processing can conform (empty, silent, too long).
    """
    p = get_profile(profile) if isinstance(profile, str) else profile
    x = np.asarray(audio, dtype=np.float32)
    problem = audio_problem(x, sample_rate_hz)
    if problem is not None:
        raise ValueError(f"cannot conform to {p.name}: {problem}")
    x = resample(x, sample_rate_hz, p.sample_rate_hz)
    rate = p.sample_rate_hz
    head, tail = room_tone_s(x, rate)
    start, stop = int(head * rate), x.size - int(tail * rate)
    if stop <= start:
        raise ValueError(f"cannot conform to {p.name}: the audio is silent")
    # Aim inside the ranges (not on their edges), so later lossy encoding cannot push a file out.
    head_s = min(p.max_head_room_tone_s, p.min_head_room_tone_s + 0.25)
    tail_s = min(p.max_tail_room_tone_s, p.min_tail_room_tone_s + 0.5)
    speech = x[start:stop]
    x = np.concatenate(
        [np.zeros(int(head_s * rate), np.float32), speech, np.zeros(int(tail_s * rate), np.float32)]
    )
    if x.size / rate > p.max_duration_s:
        raise ValueError(
            f"cannot conform to {p.name}: {x.size / rate:.1f} s exceeds {p.max_duration_s:.0f} s"
        )
    target_rms = (p.min_rms_dbfs + p.max_rms_dbfs) / 2.0
    ceiling = 10 ** ((p.max_peak_dbfs - 0.5) / 20.0)
    for _ in range(6):
        # Plain RMS, not levels(): the loudness meter it also runs is not needed in this loop.
        rms = to_db(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))
        if abs(rms - target_rms) < 0.1 and np.abs(x).max() <= ceiling:
            break
        x = _limit_peaks((x * 10 ** ((target_rms - rms) / 20.0)).astype(np.float32), rate, ceiling)
    return x.astype(np.float32), rate


class DeliveryParams(StrictParams):
    profile: str = "acx"

    @pydantic.field_validator("profile")
    @classmethod
    def _known(cls, value: str) -> str:
        get_profile(value)
        return value


class DeliveryValidator(Validator):
    """Checks one clip against a delivery profile (``profile``: one of ``PROFILES``)."""

    name: ClassVar[str] = "delivery"
    version: ClassVar[str] = "1"
    fields: ClassVar[tuple[MetricField, ...]] = (
        MetricField("sample_rate_hz", pa.int64(), "Hz", "sample rate of the clip"),
        DURATION_S,
        RMS_DBFS,
        PEAK_DBFS,
        MetricField(
            "noise_floor_dbfs",
            pa.float64(),
            "dBFS",
            "RMS of the quietest 0.5 s of the clip",
            direction="lower",
            valid_range=(None, 0.0),
        ),
        MetricField(
            "head_room_tone_s",
            pa.float64(),
            "s",
            "near-silence before the first sound",
            valid_range=(0.0, None),
        ),
        MetricField(
            "tail_room_tone_s",
            pa.float64(),
            "s",
            "near-silence after the last sound",
            valid_range=(0.0, None),
        ),
    )

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(DeliveryParams, self.name, params, "validator")
        self.profile = get_profile(self.config.profile)
        super().__init__(**self.config.model_dump())

    def measure(self, clip: Clip) -> dict[str, Any]:
        audio = np.asarray(clip.audio)
        if audio_problem(audio, clip.sample_rate_hz) is not None:
            return dict.fromkeys((f.name for f in self.fields), None)
        stats = levels(audio, clip.sample_rate_hz)
        head, tail = room_tone_s(audio, clip.sample_rate_hz)
        return {
            "sample_rate_hz": int(clip.sample_rate_hz),
            "duration_s": audio.size / clip.sample_rate_hz,
            "rms_dbfs": stats.rms_dbfs,
            "peak_dbfs": stats.peak_dbfs,
            "noise_floor_dbfs": noise_floor_dbfs(audio, clip.sample_rate_hz),
            "head_room_tone_s": head,
            "tail_room_tone_s": tail,
        }

    def check(self, metrics: Mapping[str, Any]) -> list[CheckResult]:
        p = self.profile
        prefix = self.config.profile
        if metrics.get("duration_s") is None:
            return [
                CheckResult(f"{prefix}.audio", None, None, "no metrics: audio empty or unreadable")
            ]
        failed: list[CheckResult] = []
        rate = metrics["sample_rate_hz"]
        if rate != p.sample_rate_hz:
            failed.append(
                CheckResult(
                    f"{prefix}.sample_rate_hz",
                    float(rate),
                    float(p.sample_rate_hz),
                    f"sample_rate_hz {rate} is not {p.name}'s {p.sample_rate_hz} "
                    f"(off by {rate - p.sample_rate_hz:+d} Hz)",
                )
            )
        rules = [
            ("min_rms_dbfs", "rms_dbfs", p.min_rms_dbfs, "dB"),
            ("max_rms_dbfs", "rms_dbfs", p.max_rms_dbfs, "dB"),
            ("max_peak_dbfs", "peak_dbfs", p.max_peak_dbfs, "dB"),
            ("max_noise_floor_dbfs", "noise_floor_dbfs", p.max_noise_floor_dbfs, "dB"),
            ("min_head_room_tone_s", "head_room_tone_s", p.min_head_room_tone_s, "s"),
            ("max_head_room_tone_s", "head_room_tone_s", p.max_head_room_tone_s, "s"),
            ("min_tail_room_tone_s", "tail_room_tone_s", p.min_tail_room_tone_s, "s"),
            ("max_tail_room_tone_s", "tail_room_tone_s", p.max_tail_room_tone_s, "s"),
            ("max_duration_s", "duration_s", p.max_duration_s, "s"),
        ]
        for rule, metric, limit, unit in rules:
            result = limit_check(rule, metric, metrics[metric], limit, unit, scope=p.name)
            if result is not None:
                failed.append(
                    CheckResult(f"{prefix}.{rule}", result.value, result.limit, result.message)
                )
        return failed
