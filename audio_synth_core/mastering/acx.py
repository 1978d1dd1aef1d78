"""ACX's rules measured on audio, streamed: on the master while it is written, and on the
DELIVERED file (MP3 or FLAC) decoded with PyAV, so what a retailer receives is what passes.

The thresholds are the ``acx`` delivery profile (validators/delivery.py); the measurements follow
its definitions (whole-file RMS, 10 ms frames, the quietest 0.5 s as the noise floor, room tone
as the stretch under max(-50 dBFS, floor + 10 dB) at each end), with a 4x oversampled true peak.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from audio_synth_core.audio import to_db
from audio_synth_core.mastering.chain import OVERSAMPLE_MARGIN, true_peak_envelope
from audio_synth_core.mastering.files import open_for_reading
from audio_synth_core.validators.delivery import (
    NOISE_WINDOW_S,
    ROOM_TONE_ABOVE_FLOOR_DB,
    ROOM_TONE_DBFS,
    ROOM_TONE_FRAME_S,
    get_profile,
)

ACX = get_profile("acx")
MP3_KBPS = 192
METER_BLOCK = 1 << 18  # decoded samples handed to the meter at once (~6 s at 44.1 kHz)
# Room tone must be a noise floor: a stretch of exact digital zero longer than this fails.
MAX_DIGITAL_SILENCE_S = 0.05
# MPEG-1 Layer III bit rates (kbps) by the header's 4-bit index.
_MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_MPEG2_L3_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)


class AcxMeter:
    """Streaming ACX measurements: push blocks in order (float in [-1, 1] or int16), then
    ``result()``. Memory: one float per 10 ms frame (2.9 MB for 2 hours) plus a few samples."""

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self._frame = max(1, int(rate_hz * ROOM_TONE_FRAME_S))
        self._n = 0
        self._sum_sq = 0.0
        self._sample_peak = 0.0
        self._true_peak = 0.0
        self._tail = np.zeros(0, np.float32)  # last samples, context for the oversampler
        self._pending = 0  # samples at the end of _tail whose true peak is not counted yet
        self._rest = np.zeros(0, np.float32)  # a partial 10 ms frame
        self._frames: list[np.ndarray] = []
        self._zero_run = 0
        self._longest_zero_run = 0

    def push(self, block: np.ndarray) -> None:
        x = np.asarray(block)
        x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
        if x.size == 0:
            return
        self._n += x.size
        squared = x * x
        self._sum_sq += float(np.sum(squared, dtype=np.float64))
        self._sample_peak = max(self._sample_peak, float(np.sqrt(squared.max())))
        self._count_zero_runs(x)
        self._push_frames(squared)
        buf = np.concatenate([self._tail, x])
        # Count the true peak only where the oversampler has context on both sides; the last
        # samples wait (with context) for the next block or for result().
        start = buf.size - x.size - self._pending
        stop = buf.size - OVERSAMPLE_MARGIN
        if stop > start:
            env = true_peak_envelope(buf, floor=self._true_peak)  # only a new maximum counts
            self._true_peak = max(self._true_peak, float(env[start:stop].max()))
            start = stop
        self._pending = buf.size - start
        self._tail = buf[-(self._pending + OVERSAMPLE_MARGIN) :]

    def _count_zero_runs(self, x: np.ndarray) -> None:
        nonzero = np.flatnonzero(x)
        if nonzero.size == 0:
            self._zero_run += x.size
            self._longest_zero_run = max(self._longest_zero_run, self._zero_run)
            return
        inner = int((np.diff(nonzero) - 1).max()) if nonzero.size > 1 else 0
        self._longest_zero_run = max(self._longest_zero_run, self._zero_run + nonzero[0], inner)
        self._zero_run = x.size - 1 - int(nonzero[-1])

    def _push_frames(self, squared: np.ndarray) -> None:
        data = np.concatenate([self._rest, squared]) if self._rest.size else squared
        usable = (data.size // self._frame) * self._frame
        if usable:
            frames = data[:usable].reshape(-1, self._frame)
            self._frames.append((frames.sum(axis=1) / self._frame).astype(np.float32))
        self._rest = data[usable:].copy()

    def result(self) -> dict[str, Any]:
        """rms_db, true_peak_db, sample_peak_db, noise_floor_db, head_s, tail_s, duration_s,
        digital_silence_s (the longest run of exact zeros) and sample_rate_hz."""
        if self._pending and self._tail.size:
            env = true_peak_envelope(self._tail)  # the true end: zeros after it
            self._true_peak = max(self._true_peak, float(env[-self._pending :].max()))
            self._pending = 0
        duration = self._n / self.rate_hz
        power = np.concatenate(self._frames) if self._frames else np.zeros(0, np.float32)
        floor_db = _noise_floor_db(power, self._sum_sq / max(self._n, 1))
        head, tail = _room_tone(power, floor_db, duration, self._frame / self.rate_hz)
        return {
            "sample_rate_hz": self.rate_hz,
            "duration_s": duration,
            "rms_db": to_db(float(np.sqrt(self._sum_sq / max(self._n, 1)))),
            "true_peak_db": to_db(self._true_peak),
            "sample_peak_db": to_db(self._sample_peak),
            "noise_floor_db": floor_db,
            "head_s": head,
            "tail_s": tail,
            "digital_silence_s": max(self._longest_zero_run, self._zero_run) / self.rate_hz,
        }


def _noise_floor_db(power: np.ndarray, mean_power: float) -> float:
    """RMS of the quietest NOISE_WINDOW_S stretch of 10 ms frames (the whole file if shorter)."""
    n = round(NOISE_WINDOW_S / ROOM_TONE_FRAME_S)
    if power.size <= n:
        return to_db(float(np.sqrt(power.mean() if power.size else mean_power)))
    cumulative = np.concatenate([[0.0], np.cumsum(power, dtype=np.float64)])
    window = (cumulative[n:] - cumulative[:-n]) / n
    return to_db(float(np.sqrt(max(window.min(), 0.0))))


def _room_tone(
    power: np.ndarray, floor_db: float, duration_s: float, frame_s: float
) -> tuple[float, float]:
    """Seconds of room tone before the first and after the last sound."""
    threshold = max(ROOM_TONE_DBFS, floor_db + ROOM_TONE_ABOVE_FLOOR_DB)
    loud = np.flatnonzero(power >= 10.0 ** (threshold / 10.0))
    if loud.size == 0:
        return duration_s, duration_s
    return float(loud[0] * frame_s), float(max(duration_s - (loud[-1] + 1) * frame_s, 0.0))


def measure(samples: np.ndarray, rate: int) -> dict[str, Any]:
    """ACX measurements of one in-memory clip (see ``AcxMeter.result``)."""
    meter = AcxMeter(rate)
    meter.push(np.asarray(samples))
    return meter.result()


@dataclass(frozen=True)
class AcxResult:
    """Every ACX rule on one delivered file: rule -> value, limit, margin (distance to the limit,
    positive inside it), passed. ``measurements`` holds the raw figures and stream facts."""

    rel: str
    passed: bool
    rules: dict[str, dict]
    measurements: dict[str, Any]


def _range_rule(value: float, low: float | None, high: float | None, unit: str) -> dict:
    margins = []
    if low is not None:
        margins.append(value - low)
    if high is not None:
        margins.append(high - value)
    if low is not None and high is not None:
        limit = f"{low:g}..{high:g} {unit}"
    elif low is not None:
        limit = f">= {low:g} {unit}"
    else:
        limit = f"<= {high:g} {unit}"
    margin = float(min(margins))
    return {"value": float(value), "limit": limit, "margin": margin, "passed": margin >= 0.0}


def _equal_rule(value: float, required: float, limit: str) -> dict:
    miss = abs(float(value) - required)
    return {"value": value, "limit": limit, "margin": -miss if miss else 0.0, "passed": not miss}


def evaluate(m: dict[str, Any], is_mp3: bool) -> dict[str, dict]:
    """ACX rule -> {value, limit, margin, passed} from measurements ``m``."""
    rules = {
        "rms_db": _range_rule(m["rms_db"], ACX.min_rms_dbfs, ACX.max_rms_dbfs, "dB"),
        "true_peak_db": _range_rule(m["true_peak_db"], None, ACX.max_peak_dbfs, "dBFS"),
        "noise_floor_db": _range_rule(m["noise_floor_db"], None, ACX.max_noise_floor_dbfs, "dB"),
        "digital_silence_s": _range_rule(m["digital_silence_s"], None, MAX_DIGITAL_SILENCE_S, "s"),
        "sample_rate_hz": _equal_rule(m["sample_rate_hz"], ACX.sample_rate_hz, "= 44100 Hz"),
        "channels": _equal_rule(m["channels"], 1, "= 1 (mono)"),
        "head_s": _range_rule(m["head_s"], ACX.min_head_room_tone_s, ACX.max_head_room_tone_s, "s"),
        "tail_s": _range_rule(m["tail_s"], ACX.min_tail_room_tone_s, ACX.max_tail_room_tone_s, "s"),
        "duration_s": _range_rule(m["duration_s"], None, ACX.max_duration_s, "s"),
    }
    if is_mp3:
        rules["bit_rate_kbps"] = _bit_rate_rule(m.get("frame_kbps") or [0])
    return rules


def _bit_rate_rule(rates: list[int]) -> dict:
    """ACX: a constant bit rate (every frame the same) of at least 192 kbps. Margin: kbps above
    192 for CBR; for a variable rate, the spread of rates (negative) or the shortfall."""
    low, high = min(rates), max(rates)
    margin = float(low - MP3_KBPS) if low == high else float(min(low - MP3_KBPS, low - high))
    return {
        "value": low if low == high else sorted(set(rates)),
        "limit": f">= {MP3_KBPS} kbps CBR (every frame)",
        "margin": margin,
        "passed": low == high and low >= MP3_KBPS,
    }


def frame_kbps(header: bytes) -> int | None:
    """Bit rate of one MPEG audio Layer III frame from its 4-byte header (None: not a frame)."""
    if len(header) < 4:
        return None
    (word,) = struct.unpack(">I", header[:4])
    if word >> 21 != 0x7FF or (word >> 17) & 3 != 1:  # sync, Layer III
        return None
    version = (word >> 19) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    index = (word >> 12) & 0xF
    table = _MPEG1_L3_KBPS if version == 3 else _MPEG2_L3_KBPS
    return table[index]


def check_file(store: Any, rel: str) -> AcxResult:
    """Decode the delivered file ``rel`` (MP3 or FLAC) with PyAV and apply every ACX rule."""
    import av

    is_mp3 = rel.lower().endswith(".mp3")
    kbps: set[int] = set()
    with open_for_reading(store, rel) as source, av.open(source) as container:
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate)
        channels = int(stream.codec_context.layout.nb_channels)
        meter = AcxMeter(rate)
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
        n_frames = 0
        # Decoded frames are ~1152 samples: the meter gets them in ~5 s blocks, so its numpy
        # calls (and the true-peak oversampler) run a few hundred times per hour, not 10**5.
        pending: list[np.ndarray] = []
        held = 0
        for packet in container.demux(stream):
            if is_mp3 and packet.size:
                rate_kbps = frame_kbps(bytes(packet)[:4])
                kbps.add(rate_kbps if rate_kbps is not None else 0)
                n_frames += 1
            for frame in packet.decode():
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
                    held += pending[-1].size
            if held >= METER_BLOCK:
                meter.push(np.concatenate(pending))
                pending, held = [], 0
        for out in resampler.resample(None):
            pending.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
        if pending:
            meter.push(np.concatenate(pending))
    m = meter.result()
    m["channels"] = channels
    if is_mp3:
        m["frame_kbps"] = sorted(kbps)
        m["mp3_frames"] = n_frames
    rules = evaluate(m, is_mp3)
    return AcxResult(rel, all(r["passed"] for r in rules.values()), rules, m)
