"""The dataset spec: what ``audio-synth dataset SPEC`` builds, validated before any work.

Strict like ``config/models.py``: unknown keys are errors naming the key; impossible numbers (split
ratios not summing to 1, min shares above max shares, an empty text source) fail here. Checks that
need the generator (do the voices exist, can it vary a parameter per item) run in the preflight
(``audio_synth_core.dataset.plan.check_spec``), still before any server starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from audio_synth_core.config.models import (
    CatalogConfig,
    ComputeConfig,
    GeneratorConfig,
    KnownGenerator,
    Overridable,
    ShardingConfig,
    TrackingConfig,
    _Strict,
    parse_model,
    read_yaml,
)
from audio_synth_core.config.responsible import ConsentConfig, ProvenanceConfig, WatermarkConfig
from audio_synth_core.dataset.augment import AugmentationSpec

SPLITS = ("train", "dev", "test")
ATTRIBUTES = ("speaker", "gender", "age_band", "accent", "language")
DISJOINT = ("speaker", "text", "source")
EXPORT_FORMATS = ("hf", "lhotse", "webdataset", "nemo")


class TextSource(_Strict):
    """One source of texts. ``kind``:

    - ``lines``: ``lines:`` inline, or ``path:`` a plain-text corpus, one sentence a line
      (each line its own document unless ``document_per_file``).
    - ``catalog``: a catalog file (CSV/JSONL/Parquet) read like a run's catalog; a row is a document.
    - ``template``: ``template:`` with ``{slot}`` fields filled from ``slots:`` lists (every
      combination, at most ``max_texts``), e.g. commands or numbers.
    - ``silence``: no speech; noise clips at a low level (keyword spotting's "silence" class).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    kind: Literal["lines", "catalog", "template", "silence"]
    lines: list[str] = Field(default_factory=list)
    path: str | None = Field(None, description="corpus or catalog file (local path or fsspec URL)")
    document_per_file: bool = Field(False, description="lines: the whole file is one document")
    catalog: CatalogConfig | None = None
    template: str | None = None
    slots: dict[str, list[str]] = Field(default_factory=dict)
    max_texts: int = Field(100_000, gt=0)
    language: str | None = Field(None, description="default: the spec's first language")
    weight: float = Field(1.0, gt=0, description="relative share of the dataset's items")
    label: str | None = Field(
        None, description="class label of every item (default: its normalized text; silence: name)"
    )
    duration_s: float = Field(1.0, gt=0, le=60, description="silence: clip length")
    level_dbfs: tuple[float, float] = Field((-70.0, -45.0), description="silence: RMS range")
    noise_types: list[Literal["white", "pink", "brown"]] = Field(
        default_factory=lambda: ["white", "pink", "brown"]
    )

    @model_validator(mode="after")
    def _complete(self) -> TextSource:
        where = f"texts[{self.name}]"
        if self.kind == "lines" and not self.lines and not self.path:
            raise ValueError(f"{where}: kind 'lines' needs 'lines' or 'path'")
        if self.kind == "lines" and self.lines and not any(x.strip() for x in self.lines):
            raise ValueError(f"{where}: every line is empty")
        if self.kind == "catalog" and not (self.catalog or self.path):
            raise ValueError(f"{where}: kind 'catalog' needs 'path' or 'catalog'")
        if self.kind == "template":
            if not self.template:
                raise ValueError(f"{where}: kind 'template' needs 'template'")
            import string

            fields = {f for _, f, _, _ in string.Formatter().parse(self.template) if f}
            missing = sorted(fields - set(self.slots))
            if missing:
                raise ValueError(f"{where}: template slots without values: {missing}")
            empty = sorted(k for k in fields if not [v for v in self.slots[k] if v.strip()])
            if empty:
                raise ValueError(f"{where}: template slots with no values: {empty}")
        if self.level_dbfs[0] > self.level_dbfs[1]:
            raise ValueError(f"{where}: level_dbfs min is above max")
        return self


class ParamRange(_Strict):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> ParamRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class SpeakerPool(_Strict):
    """Synthetic speakers: a generator voice + variant + parameters drawn from ranges, all
    deterministic from the spec's seed. ``variants: []`` uses the base voices only. Personas
    (``name@N``, ``name@latest``, ``name``) are speakers too, each with its own voice, params
    and attributes; with no ``voices`` the pool is the personas alone."""

    voices: list[str] = Field(default_factory=list)
    variants: list[str] = Field(default_factory=list)
    count: int = Field(
        8, gt=0, le=100_000, description="number of synthetic speakers (drawn from voices)"
    )
    params: dict[str, ParamRange] = Field(
        default_factory=dict, description="generator parameter -> range, e.g. pitch: {min, max}"
    )
    personas: list[str] = Field(
        default_factory=list, description="personas (name@N, name@latest, name) as speakers"
    )

    @model_validator(mode="after")
    def _some_speaker(self) -> SpeakerPool:
        if not self.voices and not self.personas:
            raise ValueError("speakers.voices is empty and no personas are listed: name either")
        names = [p.partition("@")[0] for p in self.personas]
        if len(set(names)) != len(names):
            raise ValueError(f"a persona is listed twice: {self.personas}")
        return self


class SizeTarget(_Strict):
    utterances: int | None = Field(None, gt=0)
    hours: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> SizeTarget:
        if (self.utterances is None) == (self.hours is None):
            raise ValueError("give exactly one of size.utterances and size.hours")
        return self


class BalanceConstraint(_Strict):
    attribute: Literal["speaker", "gender", "age_band", "accent", "language"]
    value: str
    min_share: float = Field(0.0, ge=0, le=1)
    max_share: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> BalanceConstraint:
        if self.min_share > self.max_share:
            raise ValueError(
                f"{self.attribute}={self.value}: min_share {self.min_share} is above "
                f"max_share {self.max_share}"
            )
        return self


class BalanceConfig(_Strict):
    """``by``: attributes whose groups get equal shares of the speech items; ``constraints``: min/max
    shares per group; ``tolerance``: how far an achieved share may miss its target."""

    by: list[Literal["speaker", "gender", "age_band", "accent", "language"]] = Field(
        default_factory=lambda: ["speaker"]
    )
    constraints: list[BalanceConstraint] = Field(default_factory=list)
    tolerance: float = Field(0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _feasible(self) -> BalanceConfig:
        by_attr: dict[str, list[BalanceConstraint]] = {}
        for c in self.constraints:
            by_attr.setdefault(c.attribute, []).append(c)
        for attr, cs in by_attr.items():
            values = [c.value for c in cs]
            if len(set(values)) != len(values):
                raise ValueError(f"constraints: {attr} lists a value twice: {values}")
            if sum(c.min_share for c in cs) > 1 + 1e-9:
                raise ValueError(f"constraints: the min_share of {attr} groups sum above 1")
        return self


class QualityFilter(_Strict):
    """Keep/drop per item from validator metrics of the clean clip (None: not checked)."""

    enabled: bool = True
    max_wer: float | None = Field(0.5, ge=0, description="pocketsphinx WER against its own text")
    min_snr_db: float | None = Field(None, description="blind SNR (WADA) of the clean clip")
    min_dnsmos_ovrl: float | None = Field(None, ge=1, le=5, description="DNSMOS P.835 OVRL")
    min_speaker_similarity: float | None = Field(
        None, ge=-1, le=1, description="cosine to the centroid of its synthetic speaker's clips"
    )
    min_duration_s: float | None = Field(0.1, ge=0)
    max_duration_s: float | None = Field(30.0, gt=0)


class SplitConfig(_Strict):
    ratios: dict[Literal["train", "dev", "test"], float] = Field(
        default_factory=lambda: {"train": 0.8, "dev": 0.1, "test": 0.1}
    )
    disjoint_by: list[Literal["speaker", "text", "source"]] = Field(
        default_factory=lambda: ["speaker", "text", "source"],
        description="splits share no speaker / normalized text / source document "
        "(keyword spotting: [speaker], since every split needs the same words)",
    )

    @field_validator("ratios")
    @classmethod
    def _sum_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in value.values()):
            raise ValueError(f"split ratios must not be negative: {value}")
        total = sum(value.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split ratios must sum to 1, got {total:g} ({value})")
        if value.get("train", 0) <= 0:
            raise ValueError("the train split needs a ratio above 0")
        return value


class DatasetOutput(_Strict):
    url: str = Field(
        "out/dataset-demo", description="local folder, s3://bucket/prefix or fsspec URL"
    )
    audio_format: Literal["flac", "wav"] = "flac"
    keep_clean: bool = Field(True, description="keep the clean clips next to the augmented ones")
    exports: list[Literal["hf", "lhotse", "webdataset", "nemo"]] = Field(
        default_factory=lambda: list(EXPORT_FORMATS)
    )
    storage_options: dict[str, Any] = Field(default_factory=dict)
    license: str = Field("CC0-1.0", description="license stated in the dataset card")


class DatasetSpec(Overridable, _Strict):
    name: str = Field("dataset", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    description: str = ""
    seed: int = 0
    generator: KnownGenerator = GeneratorConfig()
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    texts: list[TextSource] = Field(min_length=1)
    speakers: SpeakerPool
    size: SizeTarget
    balance: BalanceConfig = BalanceConfig()
    augmentation: AugmentationSpec | None = None
    quality_filter: QualityFilter = QualityFilter()
    splits: SplitConfig = SplitConfig()
    output: DatasetOutput = DatasetOutput()
    sharding: ShardingConfig = ShardingConfig(items_per_shard=200)
    compute: ComputeConfig = ComputeConfig()
    tracking: TrackingConfig = TrackingConfig(experiment="audio-synth-dataset")
    watermark: WatermarkConfig = WatermarkConfig()
    provenance: ProvenanceConfig = ProvenanceConfig()
    consent: ConsentConfig = ConsentConfig()

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        names = [t.name for t in self.texts]
        if len(set(names)) != len(names):
            raise ValueError(f"texts: a source name is listed twice: {names}")
        if all(t.kind == "silence" for t in self.texts):
            raise ValueError("texts: every source is 'silence'; at least one must have speech")
        for t in self.texts:
            if t.language and t.language not in self.languages:
                raise ValueError(
                    f"texts[{t.name}]: language {t.language!r} is not in languages {self.languages}"
                )
        return self

    def language_of(self, source: TextSource) -> str:
        return source.language or self.languages[0]


def parse_spec(data: Any, source: str = "") -> DatasetSpec:
    """Validate a mapping into a DatasetSpec; a ConfigError names every bad field."""
    return parse_model(DatasetSpec, data, source)


def load_spec(path: str | os.PathLike[str]) -> DatasetSpec:
    """Read a YAML spec; relative text-source paths are taken relative to the spec file."""
    path = Path(path)
    data = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("texts"), list):
        for source in data["texts"]:
            if not isinstance(source, dict):
                continue
            for holder in (source, source.get("catalog")):
                if not isinstance(holder, dict):
                    continue
                rel = holder.get("path")
                if isinstance(rel, str) and "://" not in rel and not os.path.isabs(rel):
                    candidate = path.parent / rel
                    if candidate.exists():
                        holder["path"] = str(candidate.resolve())
    return parse_spec(data, str(path))
