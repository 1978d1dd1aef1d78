"""Augmentation of clean synthetic speech: speed, pitch, room reverberation, additive noise, codec
round trips and gain, each drawn per (item, copy) from the seed and recorded as plain JSON.

Why audiomentations: it is the maintained CPU library for waveform augmentation in numpy (what
this pipeline holds: float32 arrays in Dask workers with no GPU), its transforms expose their
drawn parameters as a JSON dict and accept them back (``parameters`` + ``freeze_parameters``),
which is exactly the "draw, record, apply" contract needed here, and its pitch shift is the
Signalsmith stretcher (~10 ms per second of audio; torchaudio's took seconds here, STACK.md).
torch-audiomentations targets batched GPU tensors (a torch dependency in every worker, no codec or
room simulation); pedalboard has fast effects and codecs but no seeded parameter recording and is
not installed. Where audiomentations draws from the global ``random``/``np.random`` state inside
``apply`` (its noise transforms) or reads only local files (background noise, impulse responses),
this module does that part itself: noise from seeded generators (``noises.py``), rooms with
pyroomacoustics (``rooms.py``), codecs with PyAV (``codecs.py``).

Determinism: ``plan_augmentation`` draws every value from ``numpy.random.Generator``s seeded by
``store.ids.seed_of(seed, item_id, copy, effect)`` (one stream per effect, so changing one effect's
settings does not change what the others draw) and returns them as JSON; ``apply_augmentation``
uses only those values. Same params -> same samples -> same FLAC bytes.

Chain order (a talker in a room, picked up with background noise, sent through a channel, then
levelled): speed, pitch, reverb, noise, codec, gain. The result is clipped to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from audio_synth_core.config.secrets import collect_secrets, redact_text
from audio_synth_core.dataset import codecs, noises, rooms
from audio_synth_core.errors import ConfigError
from audio_synth_core.store.ids import content_id, seed_of
from audio_synth_core.store.storage import describe_error

PARAMS_VERSION = 1
EFFECT_ORDER = ("speed", "pitch", "reverb", "noise", "codec", "gain")
_DIGITS = 4  # recorded floats are rounded, so the record is readable and is what gets applied


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_RANGE_FIELDS = {"snr_db", "rt60_s", "x_m", "y_m", "z_m", "distance_m", "db", "factor", "semitones"}


class _Effect(_Strict):
    p: float = Field(1.0, ge=0.0, le=1.0, description="probability that the effect fires")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> _Effect:
        for name, value in self:
            if name in _RANGE_FIELDS and value[0] > value[1]:
                raise ValueError(f"{name}: min {value[0]} is greater than max {value[1]}")
        return self


NoiseType = Literal["white", "pink", "brown", "babble", "folder"]


class NoiseSpec(_Effect):
    snr_db: tuple[float, float] = (5.0, 30.0)
    types: tuple[NoiseType, ...] = Field(
        ("white", "pink", "brown"),
        min_length=1,
        description="generated noise colours, babble (speech-shaped), or 'folder' for files",
    )
    folder: str | None = Field(None, description="local folder or fsspec URL of WAV/FLAC noise")
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _folder_means_files(cls, data: Any) -> Any:
        # A folder given without types means "use the folder".
        if isinstance(data, dict) and data.get("folder") and "types" not in data:
            return {**data, "types": ("folder",)}
        return data

    @model_validator(mode="after")
    def _folder_present(self) -> NoiseSpec:
        if "folder" in self.types and not self.folder:
            raise ValueError("noise type 'folder' needs noise.folder (a folder of WAV/FLAC files)")
        return self


class ReverbSpec(_Effect):
    rt60_s: tuple[float, float] = Field((0.2, 0.8), description="reverberation time range")
    x_m: tuple[float, float] = (3.0, 8.0)
    y_m: tuple[float, float] = (3.0, 6.0)
    z_m: tuple[float, float] = (2.4, 3.5)
    distance_m: tuple[float, float] = Field((0.5, 3.0), description="source-microphone distance")
    bank_size: int = Field(
        256,
        ge=0,
        description="rooms to draw from (shared, simulated once per process); 0: one per item",
    )

    @model_validator(mode="after")
    def _reachable(self) -> ReverbSpec:
        for lo, _ in (self.x_m, self.y_m, self.z_m):
            if lo <= 2 * rooms.WALL_MARGIN_M:
                raise ValueError(f"room sizes must exceed {2 * rooms.WALL_MARGIN_M} m")
        if self.rt60_s[0] <= 0:
            raise ValueError("rt60_s must be > 0")
        # The shortest RT60 in the largest room needs the most absorption: is it below 1?
        largest = (self.x_m[1], self.y_m[1], self.z_m[1])
        if not rooms.feasible(self.rt60_s[0], largest):
            raise ValueError(
                f"rt60_s {self.rt60_s[0]} s is too short for a {largest} m room even with fully "
                "absorbing walls: raise rt60_s or shrink the room sizes"
            )
        return self


class CodecSpec(_Effect):
    kinds: tuple[Literal["mp3", "opus", "telephone"], ...] = Field(
        ("mp3", "opus", "telephone"), min_length=1
    )
    mp3_kbps: tuple[int, ...] = Field((16, 32, 64), min_length=1)
    opus_kbps: tuple[int, ...] = Field((8, 16, 32), min_length=1)


class GainSpec(_Effect):
    db: tuple[float, float] = (-6.0, 6.0)


class SpeedSpec(_Effect):
    factor: tuple[float, float] = Field((0.9, 1.1), description="> 1 is faster and shorter")
    mode: Literal["resample", "tempo"] = Field(
        "resample",
        description="resample: Kaldi-style speed perturbation (tempo and pitch change together); "
        "tempo: time stretch keeping the pitch (audiomentations TimeStretch)",
    )

    @model_validator(mode="after")
    def _sane(self) -> SpeedSpec:
        if not (self.factor[0] >= 0.5 and self.factor[1] <= 2.0):
            raise ValueError("speed factor must lie within [0.5, 2.0]")
        return self


class PitchSpec(_Effect):
    semitones: tuple[float, float] = (-2.0, 2.0)

    @model_validator(mode="after")
    def _sane(self) -> PitchSpec:
        if not (self.semitones[0] >= -12.0 and self.semitones[1] <= 12.0):
            raise ValueError("pitch semitones must lie within [-12, 12]")
        return self


class AugmentationSpec(_Strict):
    keep_clean: bool = Field(True, description="keep the clean audio as items too")
    copies: int = Field(1, ge=0, le=100, description="augmented copies per clean item")
    at_least_one: bool = Field(
        True,
        description="a copy where no effect fired by chance gets one (never a clean duplicate)",
    )
    speed: SpeedSpec | None = None
    pitch: PitchSpec | None = None
    reverb: ReverbSpec | None = None
    noise: NoiseSpec | None = None
    codec: CodecSpec | None = None
    gain: GainSpec | None = None

    @model_validator(mode="after")
    def _something_to_keep(self) -> AugmentationSpec:
        if not self.keep_clean and self.copies == 0:
            raise ValueError("keep_clean is false and copies is 0: no item would be kept")
        if self.copies > 0 and not self.effects():
            raise ValueError(
                f"copies is {self.copies} but no effect is configured "
                f"(set one of: {', '.join(EFFECT_ORDER)})"
            )
        return self

    def effects(self) -> list[str]:
        """The configured effects, in chain order."""
        return [name for name in EFFECT_ORDER if getattr(self, name) is not None]


def _round(value: float) -> float:
    return round(float(value), _DIGITS)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return _round(rng.uniform(bounds[0], bounds[1]))


def _draw_speed(rng: np.random.Generator, spec: SpeedSpec, ctx: dict) -> dict[str, Any]:
    return {"factor": _uniform(rng, spec.factor), "mode": spec.mode}


def _draw_pitch(rng: np.random.Generator, spec: PitchSpec, ctx: dict) -> dict[str, Any]:
    return {"semitones": _uniform(rng, spec.semitones)}


def _draw_reverb(rng: np.random.Generator, spec: ReverbSpec, ctx: dict) -> dict[str, Any]:
    if spec.bank_size == 0:
        return {"room": None, **rooms.draw_room(rng, spec)}
    index = int(rng.integers(spec.bank_size))
    room = _bank_room(ctx["seed"], index, spec)
    # Copies of the cached lists: a caller that edits its params cannot change the bank.
    return {"room": index, **{k: list(v) if isinstance(v, list) else v for k, v in room.items()}}


@lru_cache(maxsize=4096)
def _bank_room(seed: int, index: int, spec: ReverbSpec) -> dict[str, Any]:
    """Room ``index`` of the bank: from (seed, index) alone, drawn once per process."""
    room_rng = np.random.default_rng(seed_of(seed, "augment-room", index))
    return rooms.draw_room(room_rng, spec)


def _draw_noise(rng: np.random.Generator, spec: NoiseSpec, ctx: dict) -> dict[str, Any]:
    kind = spec.types[int(rng.integers(len(spec.types)))]
    snr = _uniform(rng, spec.snr_db)
    noise_seed = int(rng.integers(2**31))
    if kind != "folder":
        return {"type": kind, "snr_db": snr, "seed": noise_seed}
    files = noises.noise_files(spec.folder or "", spec.storage_options)
    return {
        "type": "folder",
        "snr_db": snr,
        "file": files[noise_seed % len(files)],
        "offset_fraction": _round(rng.uniform(0.0, 1.0)),
    }


def _draw_codec(rng: np.random.Generator, spec: CodecSpec, ctx: dict) -> dict[str, Any]:
    kind = spec.kinds[int(rng.integers(len(spec.kinds)))]
    choices = {"mp3": spec.mp3_kbps, "opus": spec.opus_kbps}.get(kind)
    kbps = int(choices[int(rng.integers(len(choices)))]) if choices else None
    return {"kind": kind, "bitrate_kbps": kbps}


def _draw_gain(rng: np.random.Generator, spec: GainSpec, ctx: dict) -> dict[str, Any]:
    return {"db": _uniform(rng, spec.db)}


_DRAWERS: dict[str, Callable[[np.random.Generator, Any, dict], dict[str, Any]]] = {
    "speed": _draw_speed,
    "pitch": _draw_pitch,
    "reverb": _draw_reverb,
    "noise": _draw_noise,
    "codec": _draw_codec,
    "gain": _draw_gain,
}


def plan_augmentation(spec: AugmentationSpec, item_id: str, copy: int, seed: int) -> dict:
    """The exact parameters copy ``copy`` of item ``item_id`` gets: JSON-able, deterministic from
    (seed, item_id, copy). ``{"version", "copy", "effects": [{"effect": name, ...values}]}`` with
    the effects that fire, in chain order."""
    if not 0 <= copy < max(spec.copies, 1):
        raise ConfigError(f"augmentation copy {copy} is outside 0..{spec.copies - 1}")
    ctx = {"seed": seed}
    drawn: list[tuple[str, bool, dict[str, Any]]] = []
    for name in spec.effects():
        effect_spec = getattr(spec, name)
        rng = np.random.default_rng(seed_of(seed, "augment", item_id, copy, name))
        fires = bool(rng.random() < effect_spec.p)
        drawn.append((name, fires, _DRAWERS[name](rng, effect_spec, ctx)))
    if spec.at_least_one and drawn and not any(f for _, f, _ in drawn):
        # Pick among the effects that can fire at all, weighted by their p.
        weights = np.array([getattr(spec, n).p for n, _, _ in drawn], dtype=np.float64)
        if weights.sum() > 0:
            rng = np.random.default_rng(seed_of(seed, "augment", item_id, copy, "at_least_one"))
            forced = int(rng.choice(len(drawn), p=weights / weights.sum()))
            name, _, values = drawn[forced]
            drawn[forced] = (name, True, values)
    return {
        "version": PARAMS_VERSION,
        "copy": copy,
        "effects": [{"effect": n, **values} for n, fires, values in drawn if fires],
    }


def _apply_speed(x: np.ndarray, rate: int, p: dict, options: dict) -> np.ndarray:
    factor = float(p["factor"])
    if p.get("mode", "resample") == "tempo":
        from audiomentations import TimeStretch

        stretch = TimeStretch(leave_length_unchanged=False, p=1.0)
        return _fixed(stretch, rate=factor)(x.astype(np.float32), rate)
    import soxr

    # Played back as if recorded at rate * factor: tempo and pitch move together.
    return soxr.resample(x.astype(np.float32), rate * factor, rate, quality="HQ")


def _apply_pitch(x: np.ndarray, rate: int, p: dict, options: dict) -> np.ndarray:
    from audiomentations import PitchShift

    shift = PitchShift(method="signalsmith_stretch", p=1.0)
    return _fixed(shift, num_semitones=float(p["semitones"]))(x.astype(np.float32), rate)


def _apply_reverb(x: np.ndarray, rate: int, p: dict, options: dict) -> np.ndarray:
    return rooms.apply_reverb(x, rate, p)


def _apply_noise(x: np.ndarray, rate: int, p: dict, options: dict) -> np.ndarray:
    signal = np.asarray(x, dtype=np.float64)
    power = float(np.mean(signal**2)) if len(signal) else 0.0
    if power == 0.0:  # digital silence has no level to put noise under
        return signal
    if p["type"] == "folder":
        noise = noises.file_noise(
            p["file"], len(signal), rate, float(p["offset_fraction"]), options
        )
    else:
        noise = noises.generated_noise(p["type"], len(signal), rate, int(p["seed"]))
    # Whole-clip SNR (as audiomentations' noise transforms define it): noise RMS set from the
    # signal's RMS at this point of the chain.
    noise_rms = np.sqrt(power / 10.0 ** (float(p["snr_db"]) / 10.0))
    return signal + noise * noise_rms


def _apply_codec(x: np.ndarray, rate: int, p: dict, options: dict) -> np.ndarray:
    return codecs.round_trip(x, rate, p["kind"], p.get("bitrate_kbps"))


def _apply_gain(x: np.ndarray, rate: int, p: dict, options: dict) -> np.ndarray:
    from audiomentations import Gain

    ratio = 10.0 ** (float(p["db"]) / 20.0)
    return _fixed(Gain(p=1.0), amplitude_ratio=ratio)(x.astype(np.float32), rate)


_APPLIERS: dict[str, Callable[[np.ndarray, int, dict, dict], np.ndarray]] = {
    "speed": _apply_speed,
    "pitch": _apply_pitch,
    "reverb": _apply_reverb,
    "noise": _apply_noise,
    "codec": _apply_codec,
    "gain": _apply_gain,
}


def _fixed(transform: Any, **parameters: Any) -> Any:
    """An audiomentations transform that applies exactly ``parameters`` (no draw of its own)."""
    transform.parameters = {"should_apply": True, **parameters}
    transform.freeze_parameters()
    return transform


def apply_augmentation(
    samples: np.ndarray,
    rate: int,
    params: dict,
    storage_options: dict[str, Any] | None = None,
) -> np.ndarray:
    """``samples`` (float32 mono at ``rate``) with the recorded effects applied in order; float32
    in [-1, 1]. Deterministic: the same params give the same samples. ``storage_options`` reach
    a noise folder on object storage (kept out of the params: they may hold credentials)."""
    if params.get("version") != PARAMS_VERSION:
        raise ConfigError(f"augmentation params version {params.get('version')!r} is not known")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ConfigError(f"augmentation needs mono audio, got shape {x.shape}")
    if len(x) == 0:
        return x
    options = dict(storage_options or {})
    for effect in params["effects"]:
        name = effect.get("effect")
        if name not in _APPLIERS:
            raise ConfigError(f"unknown augmentation effect {name!r}; known: {EFFECT_ORDER}")
        x = np.asarray(_APPLIERS[name](x, rate, effect, options), dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ConfigError(f"augmentation effect {name!r} produced non-finite samples")
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def augmented_id(clean_id: str, params: dict) -> str:
    """The id of ``clean_id`` augmented with ``params`` (a content id over both)."""
    return content_id("augmented", clean_id, params)


def preflight_augmentation(spec: AugmentationSpec) -> None:
    """I/O checks to run before any work: the noise folder is reachable and holds audio."""
    if spec.noise is not None and "folder" in spec.noise.types and spec.copies > 0:
        try:
            noises.noise_files(spec.noise.folder or "", spec.noise.storage_options)
        except ConfigError:
            raise
        except Exception as exc:  # unreachable, denied, unknown protocol: named, secrets redacted
            folder, options = spec.noise.folder or "", spec.noise.storage_options
            message = (
                f"augmentation.noise.folder {folder!r} cannot be listed: {describe_error(exc)}"
            )
            raise ConfigError(redact_text(message, collect_secrets([folder, options]))) from None
