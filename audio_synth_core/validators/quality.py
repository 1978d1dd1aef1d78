"""Signal quality of one clip: duration, levels, clipping, silence, DC offset and blind SNR.

Level statistics come from ``audio.levels`` (the same numbers stored at generation time), so a
validator run and the item metadata never disagree. The blind SNR is WADA-SNR (Kim & Stern 2008).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pydantic

from audio_synth_core.audio import levels
from audio_synth_core.plugins.params import StrictParams, parse_params
from audio_synth_core.validators.base import CheckResult, Clip, MetricField, Validator
from audio_synth_core.validators.rules import (
    DURATION_S,
    PEAK_DBFS,
    RMS_DBFS,
    audio_problem,
    limit_check,
)

_EPS = 1e-10

_WADA_DB = np.arange(-20, 101, dtype=np.float64)
# fmt: off
_WADA_G = np.array([
    0.40974774, 0.40986926, 0.40998566, 0.40969089, 0.40986186, 0.40999006, 0.41027138,
    0.41052627, 0.41101024, 0.41143264, 0.41231718, 0.41337272, 0.41526426, 0.4178192,
    0.42077252, 0.42452799, 0.42918886, 0.43510373, 0.44234195, 0.45161485, 0.46221153,
    0.47491647, 0.48883809, 0.50509236, 0.52353709, 0.54372088, 0.56532427, 0.58847532,
    0.61346212, 0.63954496, 0.66750818, 0.69583724, 0.72454762, 0.75414799, 0.78323148,
    0.81240985, 0.84219775, 0.87166406, 0.90030504, 0.92880418, 0.95655449, 0.9835349,
    1.01047155, 1.0362095, 1.06136425, 1.08579312, 1.1094819, 1.13277995, 1.15472826,
    1.17627308, 1.19703503, 1.21671694, 1.23535898, 1.25364313, 1.27103891, 1.28718029,
    1.30302865, 1.31839527, 1.33294817, 1.34700935, 1.3605727, 1.37345513, 1.38577122,
    1.39733504, 1.40856397, 1.41959619, 1.42983624, 1.43958467, 1.44902176, 1.45804831,
    1.46669568, 1.47486938, 1.48269965, 1.49034339, 1.49748214, 1.50435106, 1.51076426,
    1.51698915, 1.5229097, 1.528578, 1.53389835, 1.5391211, 1.5439065, 1.54858517,
    1.55310776, 1.55744391, 1.56164927, 1.56566348, 1.56938671, 1.57307767, 1.57654764,
    1.57980083, 1.58304129, 1.58602496, 1.58880681, 1.59162477, 1.5941969, 1.59693155,
    1.599446, 1.60185011, 1.60408668, 1.60627134, 1.60826199, 1.61004547, 1.61192472,
    1.61369656, 1.61534074, 1.61688905, 1.61838916, 1.61985374, 1.62135878, 1.62268119,
    1.62390423, 1.62513143, 1.62632463, 1.6274027, 1.62842767, 1.62945532, 1.6303307,
    1.63128026, 1.63204102,
])
# fmt: on


def wada_snr_db(audio: np.ndarray) -> float | None:
    """Blind SNR estimate in dB (-20..100, clamped to the table) of a speech clip; None if silent.

    The median is removed first: WADA assumes zero-centred amplitudes, and a DC offset has its own
    metric rather than counting as noise. Not the mean: speech waveforms are asymmetric, so
    subtracting their mean would turn the exact zeros of TTS pauses into a fake -60 dB noise floor.
    Digital silence drives the estimate to the 100 dB ceiling: the honest answer for clean audio.
    """
    x = audio.astype(np.float64)
    x = x - np.median(x)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= _EPS:
        return None
    magnitude = np.maximum(np.abs(x) / peak, _EPS)
    g = np.log(max(_EPS, float(magnitude.mean()))) - float(np.log(magnitude).mean())
    below = np.nonzero(g > _WADA_G)[0]
    if below.size == 0:
        return float(_WADA_DB[0])
    i = int(below.max())
    if i == len(_WADA_DB) - 1:
        return float(_WADA_DB[-1])
    step = (g - _WADA_G[i]) / (_WADA_G[i + 1] - _WADA_G[i])
    return float(_WADA_DB[i] + step * (_WADA_DB[i + 1] - _WADA_DB[i]))


class QualityParams(StrictParams):
    min_duration_s: float = pydantic.Field(0.5, ge=0)
    max_duration_s: float = pydantic.Field(60.0, gt=0)
    max_clipping_ratio: float = pydantic.Field(0.001, ge=0, le=1)
    max_silence_ratio: float = pydantic.Field(0.5, ge=0, le=1)
    max_abs_dc_offset: float = pydantic.Field(0.01, ge=0)
    min_snr_db: float = 15.0
    min_rms_dbfs: float = -35.0
    # 0 dBFS: only float audio beyond full scale (it would clip when encoded). Delivery targets
    # such as ACX -3 dBFS belong to the delivery validator.
    max_peak_dbfs: float = 0.0


class QualityValidator(Validator):
    """Duration, level, clipping, silence, DC offset and WADA-SNR checks of one clip."""

    name: ClassVar[str] = "quality"
    version: ClassVar[str] = "1"
    fields: ClassVar[tuple[MetricField, ...]] = (
        DURATION_S,
        PEAK_DBFS,
        RMS_DBFS,
        MetricField(
            "clipping_ratio",
            pa.float64(),
            "ratio",
            "share of samples at full scale",
            direction="lower",
            valid_range=(0.0, 1.0),
        ),
        MetricField(
            "silence_ratio",
            pa.float64(),
            "ratio",
            "share of 20 ms frames below -60 dBFS",
            direction="lower",
            valid_range=(0.0, 1.0),
        ),
        # Unbounded: K-weighting lifts high frequencies, so full-scale audio can exceed 0 LUFS.
        MetricField(
            "integrated_lufs",
            pa.float64(),
            "LUFS",
            "BS.1770 integrated loudness (null if under 0.4 s)",
        ),
        MetricField(
            "dc_offset",
            pa.float64(),
            "FS",
            "mean sample value (full scale = 1)",
            valid_range=(-1.0, 1.0),
        ),
        MetricField(
            "snr_db",
            pa.float64(),
            "dB",
            "blind WADA-SNR estimate (Kim & Stern 2008), -20..100 dB",
            direction="higher",
            valid_range=(-20.0, 100.0),
            sample_priority=30,
        ),
    )

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(QualityParams, self.name, params, "validator")
        if self.config.min_duration_s > self.config.max_duration_s:
            raise ValueError(
                f"validator 'quality': min_duration_s {self.config.min_duration_s} exceeds "
                f"max_duration_s {self.config.max_duration_s}"
            )
        super().__init__(**self.config.model_dump())

    def measure(self, clip: Clip) -> dict[str, Any]:
        audio = np.asarray(clip.audio)
        if audio_problem(audio, clip.sample_rate_hz) is not None:
            return dict.fromkeys((f.name for f in self.fields), None)
        stats = levels(audio, clip.sample_rate_hz)
        return {
            "duration_s": audio.size / clip.sample_rate_hz,
            **stats.as_dict(),
            "dc_offset": float(np.mean(audio, dtype=np.float64)),
            "snr_db": wada_snr_db(audio),
        }

    def check(self, metrics: Mapping[str, Any]) -> list[CheckResult]:
        c = self.config
        if metrics.get("duration_s") is None:
            return [CheckResult("audio", None, None, "no metrics: audio is empty or unreadable")]
        rules = [
            ("min_duration_s", "duration_s", metrics["duration_s"], c.min_duration_s, "s"),
            ("max_duration_s", "duration_s", metrics["duration_s"], c.max_duration_s, "s"),
            ("max_clipping_ratio", "clipping_ratio", metrics["clipping_ratio"],
             c.max_clipping_ratio, ""),
            ("max_silence_ratio", "silence_ratio", metrics["silence_ratio"],
             c.max_silence_ratio, ""),
            ("max_abs_dc_offset", "|dc_offset|", abs(metrics["dc_offset"]),
             c.max_abs_dc_offset, ""),
            ("min_snr_db", "snr_db", metrics["snr_db"], c.min_snr_db, "dB"),
            ("min_rms_dbfs", "rms_dbfs", metrics["rms_dbfs"], c.min_rms_dbfs, "dB"),
            ("max_peak_dbfs", "peak_dbfs", metrics["peak_dbfs"], c.max_peak_dbfs, "dB"),
        ]  # fmt: skip
        return [r for rule in rules if (r := limit_check(*rule)) is not None]
