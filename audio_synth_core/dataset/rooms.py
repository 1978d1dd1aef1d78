"""Room reverberation from impulse responses simulated with pyroomacoustics.

A room is a shoebox (``ShoeBox``) whose wall absorption and image-source order come from the
drawn RT60 by Sabine's formula (``inverse_sabine``), with one source and one microphone inside it;
``compute_rir`` gives the impulse response. Only the image-source method is used (no ray tracing),
which is deterministic: the same room parameters give the same RIR on every machine. Its cost grows
with the cube of the order Sabine asks for (39 s for a 1.5 s RT60 in a 3x3 m room), so the order
is capped (``MAX_ORDER_CAP``) and, where the cap bites, the RIR continues after the time its image
sources are complete as exponentially decaying noise at the drawn RT60, seeded by the room (the
usual early-reflections + statistical late-reverberation hybrid). Measured RT60 of the result
(pyroomacoustics ``measure_rt60``): 0.335 / 0.532 / 0.882 / 1.426 s for targets 0.3 / 0.5 / 0.9 /
1.5 s; the capped image-source RIR alone gave 0.594 s for 0.9 s and 0.305 s for 1.5 s.

Simulation costs about 0.1-0.5 s per room at 22 kHz, so rooms come from a bank: an item draws a
room index, and the room's parameters are derived from (seed, index) alone, so many items share a
room and its RIR is computed once per process (``rir`` is cached). The item still records every
room parameter, so its params alone determine the output.

The reverberant signal starts at the direct path (the RIR's first tap is moved to time zero, so
transcript alignment is kept), keeps the reverberation tail after the speech (the output is longer
by the RIR's length) and is scaled back to the input's RMS level.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from audio_synth_core.errors import ConfigError
from audio_synth_core.store.ids import seed_of

# Positions keep this distance from every wall (metres).
WALL_MARGIN_M = 0.3
# Image-source order grows with RT60 (Sabine): 0.08 s at order 40, 2 s at 128, 39 s at 274 (a
# 1.5 s RT60 in a 3x3 m room). Above the cap, the late tail is statistical (``_with_late_tail``).
MAX_ORDER_CAP = 40
LATE_MATCH_S = 0.02


def feasible(rt60_s: float, room_dim_m: tuple[float, float, float]) -> bool:
    """Whether a shoebox of these dimensions can reach this RT60 (absorption <= 1)."""
    import pyroomacoustics as pra

    try:
        pra.inverse_sabine(rt60_s, list(room_dim_m))
    except ValueError:
        return False
    return True


def draw_room(rng: np.random.Generator, spec: Any) -> dict[str, Any]:
    """Concrete room parameters from a ``ReverbSpec``: dimensions, RT60, source and microphone
    positions (distance drawn from the spec's range, clipped to the room)."""
    import pyroomacoustics as pra

    dims = [float(rng.uniform(lo, hi)) for lo, hi in (spec.x_m, spec.y_m, spec.z_m)]
    rt60 = float(rng.uniform(*spec.rt60_s))
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError as exc:
        raise ConfigError(
            f"augmentation.reverb: rt60_s {rt60:.2f} is not reachable in a room of {dims} m "
            f"({exc}); narrow rt60_s or the room sizes"
        ) from None
    lo = np.full(3, WALL_MARGIN_M)
    hi = np.asarray(dims) - WALL_MARGIN_M
    source = rng.uniform(lo, hi)
    source[2] = float(np.clip(rng.uniform(1.2, 1.8), lo[2], hi[2]))  # a talker's mouth height
    distance = float(rng.uniform(*spec.distance_m))
    azimuth = float(rng.uniform(-np.pi, np.pi))
    elevation = float(rng.uniform(-0.3, 0.3))
    direction = np.array(
        [
            np.cos(elevation) * np.cos(azimuth),
            np.cos(elevation) * np.sin(azimuth),
            np.sin(elevation),
        ]
    )
    mic = np.clip(source + distance * direction, lo, hi)
    return {
        "rt60_s": round(rt60, 4),
        "room_dim_m": [round(d, 3) for d in dims],
        "absorption": round(float(absorption), 5),
        "max_order": int(min(max_order, MAX_ORDER_CAP)),
        "sabine_order": int(max_order),
        "source_m": [round(float(v), 3) for v in source],
        "mic_m": [round(float(v), 3) for v in mic],
    }


@lru_cache(maxsize=512)
def _rir(
    rate: int,
    room_dim: tuple[float, ...],
    absorption: float,
    max_order: int,
    source: tuple[float, ...],
    mic: tuple[float, ...],
    rt60_s: float,
    sabine_order: int,
) -> np.ndarray:
    import pyroomacoustics as pra

    room = pra.ShoeBox(
        list(room_dim),
        fs=rate,
        materials=pra.Material(absorption),
        max_order=max_order,
        air_absorption=False,
    )
    room.add_source(list(source))
    room.add_microphone(list(mic))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    onset = int(np.argmax(np.abs(rir)))  # the direct path: the strongest tap
    rir = rir[onset:]
    if sabine_order > max_order:
        rir = _with_late_tail(rir, rate, room_dim, max_order, rt60_s, source, mic)
    rir.setflags(write=False)
    return rir


def _with_late_tail(
    rir: np.ndarray,
    rate: int,
    room_dim: tuple[float, ...],
    order: int,
    rt60_s: float,
    source: tuple[float, ...],
    mic: tuple[float, ...],
) -> np.ndarray:
    """The capped image-source RIR up to the time its images are complete, then a late tail of
    exponentially decaying noise (60 dB per RT60) at the level the RIR had there: the usual
    hybrid of early reflections and a statistical late reverberation, seeded by the room."""
    import pyroomacoustics as pra

    complete_s = order * min(room_dim) / float(pra.constants.get("c"))
    cut = min(len(rir), int(complete_s * rate))
    window = max(1, int(LATE_MATCH_S * rate))
    if cut <= window:
        return rir
    level = float(np.sqrt(np.mean(rir[cut - window : cut] ** 2)))
    length = int(rt60_s * rate)  # to -60 dB
    t = np.arange(length) / rate
    rng = np.random.default_rng(seed_of("late-reverb", room_dim, source, mic, rt60_s, rate))
    tail = rng.standard_normal(length) * level * np.exp(-3.0 * np.log(10.0) * t / rt60_s)
    return np.concatenate([rir[:cut], tail])


def rir(params: dict[str, Any], rate: int) -> np.ndarray:
    """The impulse response of a drawn room at ``rate``, starting at the direct path (cached)."""
    return _rir(
        int(rate),
        tuple(params["room_dim_m"]),
        float(params["absorption"]),
        int(params["max_order"]),
        tuple(params["source_m"]),
        tuple(params["mic_m"]),
        float(params["rt60_s"]),
        int(params.get("sabine_order", params["max_order"])),
    )


def apply_reverb(samples: np.ndarray, rate: int, params: dict[str, Any]) -> np.ndarray:
    """``samples`` in the room: direct path at time zero, tail kept, input RMS level kept."""
    x = np.asarray(samples, dtype=np.float64)
    wet = fftconvolve(x, rir(params, rate))
    rms_in = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    rms_out = float(np.sqrt(np.mean(wet[: len(x)] ** 2))) if len(x) else 0.0
    if rms_out > 0:
        wet *= rms_in / rms_out
    return wet
