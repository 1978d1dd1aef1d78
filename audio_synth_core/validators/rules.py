"""What validators share: level metric fields, the min_/max_ rule check, the unusable-audio test."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audio_synth_core.validators.base import CheckResult, MetricField

# Metrics that more than one validator measures: one definition each, so whichever validator
# registers first tells the contract, the report and the comparison the same thing.
DURATION_S = MetricField("duration_s", pa.float64(), "s", "length of the clip")
PEAK_DBFS = MetricField("peak_dbfs", pa.float64(), "dBFS", "sample peak", valid_range=(None, 0.0))
# No direction (louder is not better), but the quietest clips are the first worth a listen.
RMS_DBFS = MetricField(
    "rms_dbfs",
    pa.float64(),
    "dBFS",
    "RMS level of the whole clip",
    valid_range=(None, 0.0),
    sample_priority=40,
)


def audio_problem(audio: np.ndarray, sample_rate_hz: int) -> str | None:
    """Why this audio cannot be measured (empty, not mono, not finite), or None when it can."""
    if sample_rate_hz <= 0:
        return f"invalid sample rate {sample_rate_hz}"
    if audio.ndim != 1:
        return f"expected mono 1-D audio, got shape {audio.shape}"
    if audio.size == 0:
        return "empty audio"
    if not np.all(np.isfinite(audio)):
        return "audio contains NaN or infinite samples"
    return None


def limit_check(
    check: str, metric: str, value: float | None, limit: float, unit: str = "", scope: str = ""
) -> CheckResult | None:
    """A failed CheckResult when ``value`` breaks the ``min_*``/``max_*`` rule named ``check``.

    The message names the metric, its value, the limit and the miss, e.g. ``rms_dbfs -26.1 below
    ACX minimum -23 by 2.9 dB``. A None value fails too: a metric that cannot be measured (e.g.
    the SNR of digital silence) must not pass silently.
    """
    kind = check.split("_", 1)[0]
    if kind not in ("min", "max"):
        raise ValueError(f"rule {check!r} must start with min_ or max_")
    bound = f"{scope + ' ' if scope else ''}{kind}imum"
    if value is None:
        return CheckResult(check, None, limit, f"{metric} undefined; {bound} is {limit:g}")
    if kind == "min" and value < limit:
        word, by = "below", limit - value
    elif kind == "max" and value > limit:
        word, by = "above", value - limit
    else:
        return None
    suffix = f" {unit}" if unit else ""
    return CheckResult(
        check,
        float(value),
        limit,
        f"{metric} {value:.4g} {word} {bound} {limit:.4g} by {by:.3g}{suffix}",
    )
