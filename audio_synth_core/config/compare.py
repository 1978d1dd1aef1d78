"""Typed configuration of a generator comparison: prompts, candidates, validators, the decision
metric and the promotion rule. A bad comparison fails here, before any work, naming the field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from audio_synth_core.compare.table import measured_metrics, metric_direction
from audio_synth_core.config.models import (
    ComputeConfig,
    GeneratorConfig,
    TrackingConfig,
    ValidationConfig,
    ValidatorSpec,
    _Strict,
    parse_model,
    read_yaml,
)
from audio_synth_core.plugins import registry as plugins

LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Explicitly set, these ValidationConfig fields would be silently ignored by a comparison.
_UNUSED_VALIDATION = {"enabled", "gate", "max_duration_s"}


class PromptSpec(_Strict):
    text: str = Field(min_length=1)
    language: str = "en-us"
    id: str | None = Field(None, pattern=LABEL_PATTERN)
    attributes: dict[str, str] = Field(default_factory=dict)


class CandidateSpec(_Strict):
    """One generator configuration under comparison, known by its ``label``."""

    label: str = Field(pattern=LABEL_PATTERN)
    generator: GeneratorConfig
    voice: str | None = Field(
        None, description="default: the generator's voice for each prompt's language"
    )
    gpu: bool = Field(False, description="run on a worker declaring a GPU resource")

    @property
    def needs_gpu(self) -> bool:
        return self.gpu or self.generator.params.get("device") == "cuda"


class MetricRule(_Strict):
    """The metric the promotion decision is made on."""

    name: str = "wer"
    direction: Literal["lower", "higher"] | None = Field(
        None, description="which way is better (default: as the metric's validator declares)"
    )
    margin: float = Field(
        0.0, ge=0, description="the least improvement that counts, in metric units"
    )
    confidence: float = Field(0.95, gt=0.5, lt=1)

    @model_validator(mode="after")
    def _direction(self) -> MetricRule:
        if self.direction is None:
            declared = metric_direction(self.name)
            if declared is None:
                raise ValueError(
                    f"metric.direction: required for metric {self.name!r} (lower or higher)"
                )
            object.__setattr__(self, "direction", declared)
        return self


class RequiredGates(_Strict):
    """Rules the challenger must satisfy on its own, whatever its metric gain."""

    min_pass_rate: float | None = Field(
        None, ge=0, le=1, description="share of prompts passing every check"
    )
    max_privacy_flags: int | None = Field(
        None, ge=0, description="prompts over the similarity limit"
    )
    no_four_fifths_flag: bool = Field(
        False, description="pass-rate parity by prompt attribute holds"
    )
    max_generation_failures: int | None = Field(
        None, ge=0, description="prompts it failed to synthesize"
    )


class PromotionConfig(_Strict):
    model_name: str = Field(min_length=1)
    alias: str = Field("champion", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    challenger: str = Field(description="label of the candidate that may be promoted")
    incumbent: str = Field(description="label of the candidate holding the alias now")
    require_gates: RequiredGates = RequiredGates()


class CompareConfig(_Strict):
    name: str = Field("compare", pattern=LABEL_PATTERN)
    prompts: list[PromptSpec] | None = Field(
        None, description="texts (or {text, language, attributes})"
    )
    prompts_path: str | None = Field(
        None, description="CSV/JSONL (text column) or .txt (a line each)"
    )
    max_prompts: int | None = Field(None, gt=0)
    candidates: list[CandidateSpec] = Field(min_length=2)
    validation: ValidationConfig = ValidationConfig(
        validators=[ValidatorSpec(name="quality"), ValidatorSpec(name="intelligibility")]
    )
    metric: MetricRule = MetricRule()
    report_metrics: list[str] | None = Field(
        None, description="metrics in the table besides the decision metric (default: all numeric)"
    )
    promotion: PromotionConfig | None = None
    seed: int = 0
    audio_format: Literal["flac", "wav"] = "flac"
    compute: ComputeConfig = ComputeConfig()
    tracking: TrackingConfig = TrackingConfig(experiment="audio-synth-compare")

    @field_validator("prompts", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"text": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("metric", mode="before")
    @classmethod
    def _metric_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, value: list[CandidateSpec]) -> list[CandidateSpec]:
        labels = [c.label for c in value]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"candidate labels must be unique; repeated: {', '.join(dupes)}")
        known = plugins.available(plugins.GENERATORS)
        for c in value:
            if c.generator.name not in known:
                raise ValueError(
                    f"candidate {c.label!r}: unknown generator {c.generator.name!r}; "
                    f"registered: {', '.join(sorted(known))}"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CompareConfig:
        if self.prompts is not None and self.prompts_path is not None:
            raise ValueError("prompts and prompts_path: give one, not both")
        # Compared with the defaults, not "was it set": a dumped config must parse again.
        fields = ValidationConfig.model_fields
        unused = {f for f in _UNUSED_VALIDATION if getattr(self.validation, f) != fields[f].default}
        if unused:
            raise ValueError(
                f"validation.{sorted(unused)[0]}: not used by a comparison "
                "(promotion.require_gates are its gates)"
            )
        measured = measured_metrics(self.validation)
        for name in [self.metric.name, *(self.report_metrics or [])]:
            if name not in measured:
                raise ValueError(
                    f"metric {name!r} is not measured by the configured validators "
                    f"({', '.join(s.name for s in self.validation.validators)}); measured: "
                    f"{', '.join(sorted(measured))}"
                )
        if self.promotion is not None:
            self._check_promotion(self.promotion)
        return self

    def _check_promotion(self, p: PromotionConfig) -> None:
        labels = {c.label: c for c in self.candidates}
        for role in ("challenger", "incumbent"):
            if getattr(p, role) not in labels:
                raise ValueError(
                    f"promotion.{role}: {getattr(p, role)!r} is not a candidate label "
                    f"(labels: {', '.join(labels)})"
                )
        if p.challenger == p.incumbent:
            raise ValueError("promotion.challenger and promotion.incumbent must differ")
        uri = str(labels[p.challenger].generator.params.get("model_uri") or "")
        if model_name_of(uri) != p.model_name:
            raise ValueError(
                f"promotion.challenger: candidate {p.challenger!r} must have a generator "
                f"model_uri models:/{p.model_name}/<version> or models:/{p.model_name}@<alias> "
                f"to be promoted as {p.model_name!r}, got " + (repr(uri) if uri else "no model_uri")
            )

    def candidate(self, label: str) -> CandidateSpec:
        return next(c for c in self.candidates if c.label == label)


def model_name_of(uri: str) -> str | None:
    """The registered model name of ``models:/name/3`` or ``models:/name@alias``, else None."""
    if not uri.startswith("models:/"):
        return None
    rest = uri.removeprefix("models:/")
    return rest.split("@", 1)[0] if "@" in rest else rest.rsplit("/", 1)[0]


def parse_compare_config(data: Any, source: str = "") -> CompareConfig:
    """Validate a mapping into a CompareConfig; errors name every bad field."""
    return parse_model(CompareConfig, data, source)


def load_compare_config(path: str | os.PathLike[str]) -> CompareConfig:
    """Read a YAML CompareConfig; a relative ``prompts_path`` is taken relative to the file."""
    path = Path(path)
    data = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("prompts_path"), str):
        p = data["prompts_path"]
        if "://" not in p and not os.path.isabs(p) and (path.parent / p).exists():
            data["prompts_path"] = str((path.parent / p).resolve())
    return parse_compare_config(data, str(path))
