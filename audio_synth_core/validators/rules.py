"""What validators share: strict parameter models, the min_/max_ rule check, unusable audio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import pydantic

from audio_synth_core.validators.base import CheckResult


class StrictParams(pydantic.BaseModel):
    """Base of validator parameter models: unknown keys are errors, values are not coerced
    from other types (strings, booleans), and the model is immutable once built."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)


P = TypeVar("P", bound=StrictParams)


def parse_params(model: type[P], validator: str, params: Mapping[str, Any]) -> P:
    """Build ``model`` from ``params``; a ValueError names every unknown or invalid key."""
    unknown = sorted(set(params) - set(model.model_fields))
    if unknown:
        known = ", ".join(sorted(model.model_fields))
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for validator "
            f"{validator!r}; known: {known}"
        )
    try:
        # Strict: "20" is not a number, True is not 1.0; an int is still fine for a float.
        return model.model_validate(dict(params))
    except pydantic.ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in err.errors()
        )
        raise ValueError(f"invalid parameter(s) for validator {validator!r}: {problems}") from None


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


# WADA-SNR: Chanwoo Kim and Richard M. Stern, "Robust Signal-to-Noise Ratio Estimation Based on
# Waveform Amplitude Distribution Analysis", Interspeech 2008. Speech amplitudes are modelled as
# Gamma(alpha=0.4) and noise as Gaussian; G = log(E|z|) - E[log|z|] of the mixture rises
# monotonically with SNR. This is the standard tabulation of G for SNR -20..100 dB (1 dB steps),
# the table of the authors' MATLAB code as carried by LabROSA's snreval and its Python ports.


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
