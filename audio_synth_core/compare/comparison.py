"""Generator comparison: several generators or model versions speak the same prompts; their
metrics are compared side by side with bootstrap CIs, and a promotion rule decides whether a
challenger model version replaces the champion (an MLflow registry alias).

Pure functions, serial and deterministic (the caller decides the parallelism):
``evaluate_candidate`` (one candidate over the prompts), ``compare_table`` (means, CIs and paired
differences versus a reference candidate), ``gate_stats`` + ``decide_promotion`` (the decision and
the rule that made it), ``comparison_report_html`` (one self-contained page).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, field_validator, model_validator

from audio_synth_core import audio
from audio_synth_core.assessment.fairness import (
    BOOT_BLOCK_ELEMENTS,
    fairness_report,
    flatten_attributes,
    percentile_ci,
    poisson1_weights,
)
from audio_synth_core.config.models import (
    ComputeConfig,
    GeneratorConfig,
    TrackingConfig,
    ValidationConfig,
    ValidatorSpec,
    _format_error,
    _Strict,
    parse_model,
    read_yaml,
)
from audio_synth_core.errors import ConfigError, UnknownVoiceError
from audio_synth_core.generators.base import Generator, SynthesisRequest, build_generator
from audio_synth_core.pipeline.validate import validate_row
from audio_synth_core.plugins import registry as plugins
from audio_synth_core.store.serialize import json_safe as _json_safe
from audio_synth_core.validators.base import ValidationContext, Validator

PASS_RATE = "pass_rate"
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Which way is better for the metrics our validators write; others need an explicit direction.
KNOWN_DIRECTIONS: dict[str, Literal["lower", "higher"]] = {
    "wer": "lower",
    "cer": "lower",
    "clipping_ratio": "lower",
    "silence_ratio": "lower",
    "max_similarity": "lower",
    "snr_db": "higher",
    "mos_ovrl": "higher",
    "mos_sig": "higher",
    "mos_bak": "higher",
    "mos_p808": "higher",
    PASS_RATE: "higher",
}
# Measured, but about the measuring (ASR speed), not the audio: left out of the default table.
_NOT_COMPARED = {"asr_rtf"}
# Explicitly set, these ValidationConfig fields would be silently ignored by a comparison.
_UNUSED_VALIDATION = {"enabled", "gate", "max_duration_s"}

# A small, varied default prompt set: three kinds of sentence, five each, so pass-rate parity by
# ``kind`` can be checked (fairness groups need at least 5 items). Plain words, known to cmudict.
DEFAULT_PROMPTS: tuple[tuple[str, str], ...] = (
    ("The train leaves the station at noon.", "statement"),
    ("She keeps her garden green all summer.", "statement"),
    ("We walked along the river after dinner.", "statement"),
    ("The old clock in the hall stopped at night.", "statement"),
    ("Fresh bread smells better than anything else.", "statement"),
    ("Where did you leave the keys this morning?", "question"),
    ("Can you hear the birds outside the window?", "question"),
    ("Why is the kitchen light still on?", "question"),
    ("How long does the drive take?", "question"),
    ("Who painted the blue door?", "question"),
    ("Please close the gate behind you.", "command"),
    ("Turn left at the next corner.", "command"),
    ("Bring a warm coat for the evening.", "command"),
    ("Write your name at the top of the page.", "command"),
    ("Call me when you get home.", "command"),
)


# ----------------------------------------------------------------------------- configuration


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
    direction: Literal["lower", "higher"] | None = Field(None, description="which way is better")
    margin: float = Field(
        0.0, ge=0, description="the least improvement that counts, in metric units"
    )
    confidence: float = Field(0.95, gt=0.5, lt=1)

    @model_validator(mode="after")
    def _direction(self) -> MetricRule:
        if self.direction is None:
            if self.name not in KNOWN_DIRECTIONS:
                raise ValueError(
                    f"metric.direction: required for metric {self.name!r} (lower or higher)"
                )
            object.__setattr__(self, "direction", KNOWN_DIRECTIONS[self.name])
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


def measured_metrics(validation: ValidationConfig) -> list[str]:
    """Numeric metric names the configured validators write, in their order, then ``pass_rate``."""
    import pyarrow as pa

    names: list[str] = []
    for spec in validation.validators:
        cls = plugins.load(plugins.VALIDATORS, spec.name)
        names += [
            f.name
            for f in cls.fields
            if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)
        ]
    return list(dict.fromkeys([*names, PASS_RATE]))


def table_metrics(cfg: CompareConfig, frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """Metrics of the comparison table: the decision metric, then ``report_metrics`` (default:
    every numeric metric some candidate measured), then ``pass_rate``."""
    if cfg.report_metrics is not None:
        rest = list(cfg.report_metrics)
    else:
        rest = [
            m
            for m in measured_metrics(cfg.validation)
            if m not in _NOT_COMPARED
            and any(m in f.columns and f[m].notna().any() for f in frames.values())
        ]
    return list(dict.fromkeys([cfg.metric.name, *rest, PASS_RATE]))


def comparison_run_id(
    cfg: CompareConfig,
    prompts: Sequence[Prompt],
    pinned: Sequence[CandidateSpec],
    validators_json: str,
) -> str:
    """Id of the candidates' outputs: a hash of what determines them (prompts, pinned generator
    configurations, validators, format), so a re-run reuses them and a moved alias does not."""
    key = json.dumps(
        {
            "prompts": [[p.id, p.text, p.language, dict(p.attributes)] for p in prompts],
            "candidates": [c.model_dump(mode="json") for c in pinned],
            "validators": json.loads(validators_json),
            "audio_format": cfg.audio_format,
        },
        sort_keys=True,
    )
    return f"{cfg.name}-{_digest(key)[:12]}"


def decision_id(cfg: CompareConfig) -> str:
    """Id of one decision over a run's outputs (the rule, gates, bootstrap and report settings)."""
    key = cfg.model_dump(mode="json", include={"metric", "report_metrics", "promotion", "seed"})
    key["validation"] = cfg.validation.model_dump(
        mode="json", include={"n_boot", "fairness_attributes", "report_samples"}
    )
    return _digest(json.dumps(key, sort_keys=True))[:12]


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


# ----------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """One text every candidate speaks; ``seed`` is shared so stochastic models are comparable."""

    id: str
    text: str
    language: str = "en-us"
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return int(_digest(self.id)[:8], 16)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _prompt(spec: PromptSpec) -> Prompt:
    pid = spec.id or _digest(spec.language, spec.text)[:16]
    return Prompt(pid, spec.text, spec.language, dict(spec.attributes))


def _read_prompt_file(url: str) -> list[PromptSpec]:
    import fsspec

    suffix = url.lower().rsplit(".", 1)[-1]
    with fsspec.open(url, "r", encoding="utf-8") as fh:
        if suffix == "txt":
            return [PromptSpec(text=line.strip()) for line in fh if line.strip()]
        if suffix in ("csv", "jsonl"):
            df = (
                pd.read_csv(fh, dtype=str)
                if suffix == "csv"
                else pd.read_json(fh, lines=True, dtype=False)
            )
        else:
            raise ConfigError(f"prompts_path {url!r}: expected a .csv, .jsonl or .txt file")
    if "text" not in df.columns:
        raise ConfigError(
            f"prompts_path {url!r}: no 'text' column (columns: {', '.join(df.columns)})"
        )
    specs = []
    for row in df.to_dict(orient="records"):
        row = {
            k: v
            for k, v in row.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
        extra = {k: str(v) for k, v in row.items() if k not in ("text", "language", "id")}
        try:
            specs.append(
                PromptSpec(
                    text=str(row.get("text", "")),
                    language=str(row.get("language", "en-us")),
                    id=str(row["id"]) if "id" in row else None,
                    attributes=extra,
                )
            )
        except ValidationError as exc:
            raise ConfigError(_format_error(exc, f"prompts_path {url!r}")) from None
    return specs


def load_prompts(cfg: CompareConfig) -> list[Prompt]:
    """The prompts of a comparison: inline, from ``prompts_path``, or the default set."""
    if cfg.prompts is not None:
        specs = list(cfg.prompts)
    elif cfg.prompts_path is not None:
        try:
            specs = _read_prompt_file(cfg.prompts_path)
        except FileNotFoundError:
            raise ConfigError(f"prompts_path {cfg.prompts_path!r} does not exist") from None
    else:
        specs = [PromptSpec(text=t, attributes={"kind": k}) for t, k in DEFAULT_PROMPTS]
    prompts = [_prompt(s) for s in specs][: cfg.max_prompts]
    if not prompts:
        raise ConfigError("prompts: no prompts to compare on")
    seen: dict[str, str] = {}
    for p in prompts:
        if p.id in seen:
            raise ConfigError(f"prompts: duplicate prompt {p.text!r} (id {p.id})")
        seen[p.id] = p.text
    return prompts


# ----------------------------------------------------------------------------- evaluation


def pin_candidate(spec: CandidateSpec) -> CandidateSpec:
    """The candidate with an aliased ``models:/name@alias`` replaced by the version it names now,
    so every worker uses the same model even if the alias moves during the run."""
    uri = spec.generator.params.get("model_uri")
    if not (isinstance(uri, str) and uri.startswith("models:/") and "@" in uri):
        return spec
    from audio_synth_core.models.registry import resolve_model_uri

    concrete, _ = resolve_model_uri(uri)
    generator = spec.generator.model_copy(
        update={"params": {**spec.generator.params, "model_uri": concrete}}
    )
    return spec.model_copy(update={"generator": generator})


def _failed_row(base: dict[str, Any], check: str, reason: str) -> dict[str, Any]:
    return {**base, "status": "failed", "error": reason, "passed": False, "failed_checks": check}


def evaluate_candidate(
    spec: CandidateSpec,
    prompts: Sequence[Prompt],
    validators: Sequence[Validator],
    *,
    generator: Generator | None = None,
    audio_sink: Callable[[str, bytes], str] | None = None,
    audio_format: str = "flac",
    batch_size: int = 16,
) -> pd.DataFrame:
    """One row per prompt: the candidate's audio validated like any item (metrics, ``passed``,
    ``failed_checks``). A prompt it cannot synthesize is a failed row with its error, never a
    crash. ``audio_sink(name, data)`` stores each file and returns its URI (``audio_uri``)."""
    gen = generator or build_generator(spec.generator.name, spec.generator.params)
    described = gen.describe()
    context = ValidationContext(texts=[p.text for p in prompts])
    for v in validators:
        # e.g. the ASR language model of exactly these prompts: the same for every candidate.
        v.prepare(context)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        bases, requests, todo = [], [], []
        for p in batch:
            base = {
                "prompt_id": p.id,
                "text": p.text,
                "language": p.language,
                "attributes": json.dumps(dict(p.attributes), sort_keys=True),
                "candidate": spec.label,
                "generator": described["name"],
                "generator_version": described["version"],
                "generator_params": json.dumps(described["params"], sort_keys=True, default=str),
                "seed": p.seed,
                "voice": None,
                "audio_uri": None,
            }
            bases.append(base)
            try:
                base["voice"] = gen.resolve_voice(spec.voice, p.language).name
            except UnknownVoiceError as exc:
                base.update(_failed_row(base, "generation", str(exc)))
                continue
            todo.append(len(bases) - 1)
            requests.append(SynthesisRequest(p.text, base["voice"], p.language, p.seed))
        try:
            outputs: list[Any] = gen.generate(requests) if requests else []
        except Exception as exc:  # a generator crash fails this batch's prompts, recorded
            outputs = [exc] * len(requests)
        for i, out in zip(todo, outputs, strict=True):
            base = bases[i]
            if isinstance(out, Exception):
                base.update(_failed_row(base, "generation", f"{type(out).__name__}: {out}"))
                continue
            samples = np.asarray(out, dtype=np.float32)
            if samples.size == 0 or not np.isfinite(samples).all():
                base.update(
                    _failed_row(base, "generation", "generator returned empty or non-finite audio")
                )
                continue
            data = audio.encode(samples, gen.sample_rate_hz, audio_format)
            if audio_sink is not None:
                base["audio_uri"] = audio_sink(f"{base['prompt_id']}.{audio_format}", data)
            row = {
                "id": base["prompt_id"],
                "text": base["text"],
                "language": base["language"],
                "attributes": base["attributes"],
            }
            measured = validate_row(row, data, validators)
            measured.pop("id")
            base.update({"status": "ok", "error": None, **measured})
        rows.extend(bases)
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        return pd.DataFrame(columns=["prompt_id", "candidate", "status", "passed"])
    frame["passed"] = (
        frame["passed"].astype(object).where(frame["passed"].notna(), False).astype(bool)
    )
    return frame


# ----------------------------------------------------------------------------- comparison table

TABLE_COLUMNS = [
    "candidate",
    "metric",
    "n",
    "mean",
    "ci_low",
    "ci_high",
    "reference",
    "n_paired",
    "diff_mean",
    "diff_ci_low",
    "diff_ci_high",
]


def _metric_values(frame: pd.DataFrame, metric: str) -> pd.Series:
    if metric == PASS_RATE:
        # Failed items count as not passed: a candidate must not gain by failing to synthesize.
        return frame["passed"].astype(object).where(frame["passed"].notna(), False).astype(float)
    if metric not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[metric].astype(object), errors="coerce").astype(float)


def _boot_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson-bootstrap means of every column, shape (n_boot, n_cols), NaN where none drawn.

    One weight per prompt and replicate, shared by every column: the candidates' means and their
    per-prompt differences are resampled on the SAME prompts, which is what makes the test paired.
    """
    n_rows, n_cols = values.shape
    present = ~np.isnan(values)
    both = np.hstack([np.where(present, values, 0.0), present.astype(np.float64)])
    out = np.full((n_boot, n_cols), np.nan)
    block = max(1, BOOT_BLOCK_ELEMENTS // max(n_rows, 1))
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        r = poisson1_weights(rng, (stop - start, n_rows)) @ both
        sums, counts = r[:, :n_cols], r[:, n_cols:]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = np.where(counts > 0, sums / counts, np.nan)
    return out


def compare_table(
    frames: Mapping[str, pd.DataFrame],
    metrics: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    *,
    reference: str | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean and bootstrap CI of each metric per candidate, and the paired difference
    (candidate - reference, per prompt) with its CI. One row per (candidate, metric).

    Frames are joined on ``prompt_id``; a prompt missing a value in either candidate is left out
    of that pair (``n_paired``). ``pass_rate`` is the share of prompts with ``passed``.
    """
    labels = list(frames)
    if not labels:
        raise ValueError("compare_table needs at least one candidate")
    reference = reference or labels[0]
    if reference not in frames:
        raise ValueError(f"reference {reference!r} is not a candidate ({', '.join(labels)})")
    metrics = list(dict.fromkeys(metrics))
    ids = list(dict.fromkeys(pid for f in frames.values() for pid in f["prompt_id"]))
    columns: list[np.ndarray] = []
    keys: list[tuple[str, str, str]] = []  # (kind, candidate, metric)
    values: dict[tuple[str, str], np.ndarray] = {}
    for label, frame in frames.items():
        indexed = frame.set_index("prompt_id")
        for m in metrics:
            x = _metric_values(indexed, m).reindex(ids).to_numpy(dtype=np.float64)
            values[label, m] = x
            columns.append(x)
            keys.append(("mean", label, m))
    for label in labels:
        if label == reference:
            continue
        for m in metrics:
            columns.append(values[label, m] - values[reference, m])  # NaN unless both measured
            keys.append(("diff", label, m))
    matrix = np.column_stack(columns) if columns else np.empty((len(ids), 0))
    boot = _boot_means(matrix, n_boot, np.random.default_rng(seed))
    stats: dict[tuple[str, str, str], tuple[int, float | None, float | None, float | None]] = {}
    for j, key in enumerate(keys):
        col = matrix[:, j]
        n = int((~np.isnan(col)).sum())
        mean = float(np.nanmean(col)) if n else None
        lo, hi = percentile_ci(boot[:, j], confidence) if n >= 2 else (None, None)
        stats[key] = (n, mean, lo, hi)
    rows = []
    for label in labels:
        for m in metrics:
            n, mean, lo, hi = stats["mean", label, m]
            dn, dm, dlo, dhi = stats.get(("diff", label, m), (None, None, None, None))
            rows.append([label, m, n, mean, lo, hi, reference, dn, dm, dlo, dhi])
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for c in ("mean", "ci_low", "ci_high", "diff_mean", "diff_ci_low", "diff_ci_high"):
        table[c] = table[c].astype(float)
    table["n_paired"] = table["n_paired"].astype("Int64")
    return table


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows of a comparison table (NaN -> None)."""
    return [_json_safe(r) for r in table.astype(object).to_dict(orient="records")]


# ----------------------------------------------------------------------------- gates and decision


@dataclass(frozen=True)
class GateStats:
    """What the promotion gates look at, for one candidate."""

    n_items: int
    n_failed: int
    pass_rate: float
    privacy_flags: int
    four_fifths_flags: tuple[str, ...] = ()
    parity_attributes: tuple[str, ...] = ()  # attributes whose pass-rate parity could be computed


def gate_stats(
    frame: pd.DataFrame, attributes: Sequence[str] | None = None, n_boot: int = 200, seed: int = 0
) -> GateStats:
    """Pass rate, generation failures, privacy flags and four-fifths flags of one candidate.

    ``attributes`` default to the prompt attributes with two or more values.
    """
    df = flatten_attributes(frame)
    failed_checks = (
        df["failed_checks"].fillna("")
        if "failed_checks" in df.columns
        else pd.Series("", index=df.index)
    )
    if attributes is None:
        keys = {
            k
            for a in frame.get("attributes", pd.Series(dtype=object)).dropna()
            for k in json.loads(a)
        }
        attributes = sorted(k for k in keys if k in df.columns and df[k].nunique(dropna=True) >= 2)
    flags: tuple[str, ...] = ()
    evaluated: tuple[str, ...] = ()
    present = [a for a in attributes if a in df.columns]
    if present and len(df):
        report = fairness_report(df, present, [], n_boot=n_boot, seed=seed)
        flags = tuple(f for f in report.flags if f.startswith("four-fifths"))
        evaluated = tuple(
            a
            for a, r in report.attributes.items()
            if r.pass_rate is not None and r.pass_rate.ratio is not None
        )
    n = len(df)
    return GateStats(
        n_items=n,
        n_failed=int((df["status"] != "ok").sum()) if "status" in df.columns else 0,
        pass_rate=float(df["passed"].fillna(False).astype(bool).mean()) if n else 0.0,
        privacy_flags=int(failed_checks.str.contains("privacy_similarity").sum()),
        four_fifths_flags=flags,
        parity_attributes=evaluated,
    )


@dataclass(frozen=True)
class Decision:
    """Whether the challenger takes the alias, and the one rule that decided (``rule``):
    ``promote``, ``gate:<name>``, ``missing``, ``margin``, ``ci``, ``no_promotion`` (or, set by
    the flow, ``same_version``)."""

    promote: bool
    rule: str
    reason: str
    metric: str
    direction: str
    margin: float
    challenger: str | None = None
    incumbent: str | None = None
    improvement: float | None = None  # challenger's gain over the incumbent, in the good direction
    diff_mean: float | None = None  # challenger - incumbent, in metric units
    diff_ci_low: float | None = None
    diff_ci_high: float | None = None
    n_paired: int = 0
    gates: dict[str, str] = field(default_factory=dict)  # gate -> what was measured against what
    failed_gates: list[str] = field(default_factory=list)
    model_name: str | None = None
    alias: str | None = None
    version: str | None = None  # the challenger's model version (set by the flow)
    alias_before: str | None = None  # the version the alias named before the decision
    alias_set: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def _g(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _check_gates(rules: RequiredGates, stats: GateStats | None) -> tuple[dict[str, str], list[str]]:
    """Each configured gate -> its verdict text; and the names of the gates that failed."""
    verdicts: dict[str, str] = {}
    failed: list[str] = []

    def judge(name: str, ok: bool, text: str) -> None:
        verdicts[name] = f"{'ok' if ok else 'FAILED'}: {text}"
        if not ok:
            failed.append(name)

    if stats is None:
        for name, value in rules.model_dump().items():
            if value not in (None, False):
                judge(name, False, "not measured for the challenger")
        return verdicts, failed
    if rules.min_pass_rate is not None:
        judge(
            "min_pass_rate",
            stats.pass_rate >= rules.min_pass_rate,
            f"pass rate {stats.pass_rate:.3f} vs required >= {rules.min_pass_rate:.3f}",
        )
    if rules.max_privacy_flags is not None:
        judge(
            "max_privacy_flags",
            stats.privacy_flags <= rules.max_privacy_flags,
            f"{stats.privacy_flags} prompts resemble a protected speaker (allowed {rules.max_privacy_flags})",
        )
    if rules.max_generation_failures is not None:
        judge(
            "max_generation_failures",
            stats.n_failed <= rules.max_generation_failures,
            f"{stats.n_failed} prompts failed to synthesize (allowed {rules.max_generation_failures})",
        )
    if rules.no_four_fifths_flag:
        if stats.four_fifths_flags:
            judge("no_four_fifths_flag", False, "; ".join(stats.four_fifths_flags))
        elif not stats.parity_attributes:
            # Unmeasurable is not "fair": a required fairness gate must be measured to pass.
            judge(
                "no_four_fifths_flag",
                False,
                "not evaluable: no prompt attribute has two groups of at least 5 prompts",
            )
        else:
            judge(
                "no_four_fifths_flag", True, f"parity holds by {', '.join(stats.parity_attributes)}"
            )
    return verdicts, failed


def decide_promotion(
    table: pd.DataFrame, cfg: CompareConfig, gates: Mapping[str, GateStats] | None = None
) -> Decision:
    """Promote the challenger when it passes every required gate, beats the incumbent on the
    decision metric by at least the margin, and the CI of the paired difference excludes 0 in
    the good direction. ``table`` must have the incumbent as its reference."""
    rule = cfg.metric
    base = {"metric": rule.name, "direction": rule.direction or "lower", "margin": rule.margin}
    p = cfg.promotion
    if p is None:
        return Decision(False, "no_promotion", "no promotion configured", **base)
    base |= {
        "challenger": p.challenger,
        "incumbent": p.incumbent,
        "model_name": p.model_name,
        "alias": p.alias,
    }
    verdicts, failed = _check_gates(p.require_gates, (gates or {}).get(p.challenger))
    base |= {"gates": verdicts, "failed_gates": failed}
    row = table[(table["candidate"] == p.challenger) & (table["metric"] == rule.name)]
    found = not row.empty and (row["reference"] == p.incumbent).all()
    r = row.iloc[0] if found else None
    diff = _num(r["diff_mean"]) if r is not None else None
    lo, hi = (_num(r["diff_ci_low"]), _num(r["diff_ci_high"])) if r is not None else (None, None)
    n_paired = int(r["n_paired"]) if r is not None and not pd.isna(r["n_paired"]) else 0
    lower = rule.direction == "lower"
    improvement = None if diff is None else (-diff if lower else diff)
    base |= {
        "improvement": improvement,
        "diff_mean": diff,
        "diff_ci_low": lo,
        "diff_ci_high": hi,
        "n_paired": n_paired,
    }
    what = f"{rule.name} ({rule.direction} is better)"
    if failed:
        texts = "; ".join(f"{g} {verdicts[g].removeprefix('FAILED: ')}" for g in failed)
        return Decision(
            False,
            f"gate:{failed[0]}",
            f"keep: challenger {p.challenger!r} fails required gate(s): {texts}",
            **base,
        )
    if r is None or diff is None:
        why = (
            "no paired values"
            if r is not None
            else f"no {rule.name} row versus {p.incumbent!r} in the table"
        )
        return Decision(
            False, "missing", f"keep: {why} for challenger {p.challenger!r} on {what}", **base
        )
    ci = f"{rule.confidence:.0%} CI of the difference [{_g(lo)}, {_g(hi)}]"
    if improvement is None or improvement <= 0 or improvement < rule.margin:
        verb = "does not improve on" if (improvement or 0) <= 0 else "improves on"
        return Decision(
            False,
            "margin",
            f"keep: challenger {p.challenger!r} {verb} incumbent {p.incumbent!r} on {what} "
            f"by {_g(improvement)} (challenger - incumbent = {_g(diff)}), less than the margin {_g(rule.margin)}",
            **base,
        )
    excludes = (hi is not None and hi < 0) if lower else (lo is not None and lo > 0)
    if not excludes:
        return Decision(
            False,
            "ci",
            f"keep: challenger {p.challenger!r} improves on {p.incumbent!r} on {what} by {_g(improvement)} "
            f"(margin {_g(rule.margin)}), but the {ci} over {n_paired} paired prompts "
            f"{'is undefined' if lo is None else 'includes 0'}",
            **base,
        )
    gate_text = (
        f"; required gates hold ({', '.join(verdicts)})" if verdicts else "; no gates required"
    )
    return Decision(
        True,
        "promote",
        f"promote: challenger {p.challenger!r} beats incumbent {p.incumbent!r} on {what} by "
        f"{_g(improvement)} >= margin {_g(rule.margin)}, and the {ci} over {n_paired} paired prompts "
        f"excludes 0{gate_text}",
        **base,
    )


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


# ----------------------------------------------------------------------------- HTML report


def _ci_figure(
    table: pd.DataFrame, metrics: Sequence[str], kind: str, decision: Decision | None
) -> str:
    from audio_synth_core.reporting.run_report import figure_grid, png_img

    mean, lo, hi = (
        ("mean", "ci_low", "ci_high")
        if kind == "mean"
        else ("diff_mean", "diff_ci_low", "diff_ci_high")
    )
    panels = [m for m in metrics if table.loc[table["metric"] == m, mean].notna().any()]
    if not panels:
        return ""
    reference = str(table["reference"].iloc[0])
    title = (
        "mean per candidate, 95% bootstrap CI"
        if kind == "mean"
        else f"paired difference versus {reference} (candidate - {reference}), 95% bootstrap CI"
    )
    fig, axes = figure_grid(len(panels), ncols=3, panel=(4.0, 2.8), title=title)
    for ax, m in zip(axes, panels, strict=True):
        rows = table[(table["metric"] == m) & table[mean].notna()]
        pos = np.arange(len(rows))
        means = rows[mean].to_numpy(dtype=float)
        err = np.nan_to_num(
            np.vstack([means - rows[lo].to_numpy(float), rows[hi].to_numpy(float) - means]), nan=0.0
        )
        ax.errorbar(pos, means, yerr=err.clip(min=0), fmt="o", capsize=5, color="#3b6ea8")
        ax.set_xticks(pos, list(rows["candidate"]))
        ax.tick_params(labelsize=8)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_title(m, fontsize=10)
        if kind == "diff":
            ax.axhline(0, color="#5b6773", lw=1)
            if decision is not None and m == decision.metric and decision.margin:
                sign = -1 if decision.direction == "lower" else 1
                ax.axhline(sign * decision.margin, color="#b3261e", ls="--", lw=1, label="margin")
                ax.legend(fontsize=7)
    return png_img(fig)


def _players(
    samples: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    max_prompts: int,
    show: Sequence[str],
) -> str:
    from audio_synth_core.reporting.run_report import (
        AUDIO_BUDGET_BYTES,
        RawHtml,
        escape_html,
        format_value,
        html_table,
    )

    budget, skipped, rows = AUDIO_BUDGET_BYTES, 0, []
    for s in list(samples)[:max_prompts]:
        cells: list[Any] = [
            RawHtml(
                f"{escape_html(s.get('text', ''))}<br><code>{escape_html(s.get('prompt_id', ''))}</code>"
            )
        ]
        for label in labels:
            clip = (s.get("clips") or {}).get(label)
            data = bytes((clip or {}).get("audio_bytes") or b"")
            if not clip or not data or len(data) > budget:
                skipped += bool(data)
                note = (clip or {}).get("error") or (
                    "not embedded (size budget)" if data else "no audio"
                )
                cells.append(RawHtml(f'<span class="muted">{escape_html(note)}</span>'))
                continue
            budget -= len(data)
            src = f"data:{clip.get('mime', 'audio/flac')};base64,{base64.b64encode(data).decode('ascii')}"
            metrics = clip.get("metrics") or {}
            text = " &middot; ".join(
                f"{escape_html(k)} {format_value(metrics.get(k))}" for k in show if k in metrics
            )
            cells.append(
                RawHtml(
                    f'<audio controls preload="metadata" src="{src}"></audio>'
                    f'<div class="muted">{text}</div>'
                )
            )
        rows.append(cells)
    out = html_table(["prompt", *labels], rows, "players-table")
    if len(samples) > max_prompts:
        out += f'<p class="muted">{len(samples) - max_prompts} more prompts not shown.</p>'
    if skipped:
        out += f'<p class="muted">{skipped} clips not embedded (size budget).</p>'
    return out


def comparison_report_html(
    table: pd.DataFrame,
    decision: Decision | None,
    samples: Sequence[Mapping[str, Any]] = (),
    gates: Mapping[str, GateStats] | None = None,
    *,
    summary: Mapping[str, Any] | None = None,
    max_prompts: int = 8,
    title: str = "audio-synth generator comparison",
) -> str:
    """One self-contained page: decision and reason, comparison table, CI plots of the means and
    of the paired differences, gate statistics, and side-by-side players per prompt.

    ``samples`` are ``{prompt_id, text, clips: {label: {audio_bytes, mime, metrics, error}}}``;
    at most ``max_prompts`` rows are embedded, within the report's audio byte budget.
    """
    from audio_synth_core.reporting.run_report import CSS, RawHtml, escape_html, html_table

    labels = list(dict.fromkeys(table["candidate"]))
    metrics = list(dict.fromkeys(table["metric"]))
    if decision is not None and decision.metric in metrics:  # the deciding metric first
        metrics.remove(decision.metric)
        metrics.insert(0, decision.metric)
    sections: list[tuple[str, str]] = []
    if summary:
        sections.append(
            ("Run", html_table(["key", "value"], [(k, v) for k, v in summary.items()], "kv"))
        )
    headers = [
        "candidate",
        "metric",
        "n",
        "mean",
        "95% CI",
        "n paired",
        "diff vs ref",
        "diff 95% CI",
    ]
    rows = []
    for m in metrics:
        for r in table[table["metric"] == m].itertuples(index=False):
            ci = f"[{_g(r.ci_low)}, {_g(r.ci_high)}]" if pd.notna(r.ci_low) else None
            dci = (
                f"[{_g(r.diff_ci_low)}, {_g(r.diff_ci_high)}]" if pd.notna(r.diff_ci_low) else None
            )
            bold = decision is not None and m == decision.metric
            rows.append(
                [
                    r.candidate,
                    RawHtml(f"<b>{escape_html(m)}</b>") if bold else m,
                    r.n,
                    r.mean,
                    ci,
                    None if pd.isna(r.n_paired) else int(r.n_paired),
                    None if pd.isna(r.diff_mean) else r.diff_mean,
                    dci,
                ]
            )
    ref = table["reference"].iloc[0] if len(table) else ""
    sections.append(
        (
            "Comparison table",
            f'<p class="muted">Differences are paired per prompt: candidate - {escape_html(ref)}.</p>'
            + html_table(headers, rows),
        )
    )
    sections.append(
        ("Means with confidence intervals", _ci_figure(table, metrics, "mean", decision))
    )
    sections.append(("Paired differences", _ci_figure(table, metrics, "diff", decision)))
    if gates:
        grows = [
            (
                label,
                g.n_items,
                g.n_failed,
                g.pass_rate,
                g.privacy_flags,
                "; ".join(g.four_fifths_flags)
                or ("none" if g.parity_attributes else "not evaluable"),
            )
            for label, g in gates.items()
        ]
        sections.append(
            (
                "Gate statistics",
                html_table(
                    [
                        "candidate",
                        "prompts",
                        "failed to synthesize",
                        "pass rate",
                        "privacy flags",
                        "four-fifths flags",
                    ],
                    grows,
                ),
            )
        )
    show = [m for m in metrics if m != PASS_RATE][:3]
    sections.append(
        ("Listen: each prompt, every candidate", _players(samples, labels, max_prompts, show))
    )
    if decision is None:
        banner = '<div class="banner pass"><strong>NO DECISION</strong></div>'
    else:
        cls = "pass" if decision.promote else "fail"
        head = "PROMOTE" if decision.promote else "KEEP THE INCUMBENT"
        if decision.promote and decision.model_name:
            head += f": {decision.model_name}@{decision.alias} -> version {decision.version or '?'}"
        gate_list = "".join(
            f"<li>{escape_html(k)}: {escape_html(v)}</li>" for k, v in decision.gates.items()
        )
        banner = (
            f'<div class="banner {cls}"><strong>{escape_html(head)}</strong>'
            f"<div>rule <code>{escape_html(decision.rule)}</code>: {escape_html(decision.reason)}</div>"
            f"{f'<ul>{gate_list}</ul>' if gate_list else ''}</div>"
        )
    body = "".join(f"<section><h2>{escape_html(t)}</h2>{s}</section>" for t, s in sections if s)
    css = CSS + ".players-table audio{width:220px}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape_html(title)}</title><style>{css}</style></head><body><main>"
        f"<h1>{escape_html(title)}</h1>{banner}{body}</main></body></html>"
    )
