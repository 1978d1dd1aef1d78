"""Validators: one interface (``Validator``) for every per-item measurement and check."""

from audio_synth_core.validators.base import (
    CheckResult,
    Clip,
    MetricField,
    ValidationContext,
    Validator,
    build_validator,
    registered_fields,
    registered_flag_checks,
)

__all__ = [
    "CheckResult",
    "Clip",
    "MetricField",
    "ValidationContext",
    "Validator",
    "build_validator",
    "registered_fields",
    "registered_flag_checks",
]
