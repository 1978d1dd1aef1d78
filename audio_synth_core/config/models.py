"""Typed run configuration. A bad config fails here, before any work, naming the field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from audio_synth_core.config.responsible import ConsentConfig, ProvenanceConfig, WatermarkConfig
from audio_synth_core.errors import ConfigError


class _Strict(BaseModel):
    # Unknown keys are typos; reject them with their name instead of ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogConfig(_Strict):
    path: str = Field(description="catalog file (CSV, JSONL or Parquet); local path or fsspec URL")
    format: Literal["auto", "csv", "jsonl", "parquet"] = "auto"
    id_column: str = "id"
    text_column: str = "text"
    voice_column: str = "voice"
    language_column: str = "language"
    persona_column: str = Field(
        "persona",
        description="column naming a voice persona (name@N, name@latest) instead of a voice",
    )
    max_text_chars: int = Field(1_000_000, gt=0, description="longer texts fail as one item")


class GeneratorConfig(_Strict):
    name: str = "espeak"
    params: dict[str, Any] = Field(default_factory=dict)


def _known_generator(value: GeneratorConfig) -> GeneratorConfig:
    from audio_synth_core.plugins import registry as plugins

    if value.name not in plugins.available(plugins.GENERATORS):
        known = ", ".join(sorted(plugins.available(plugins.GENERATORS)))
        raise ValueError(f"unknown generator {value.name!r}; registered: {known}")
    return value


# A generator section whose plug-in must be registered (every job's config uses it).
KnownGenerator = Annotated[GeneratorConfig, AfterValidator(_known_generator)]


class Overridable:
    """A job config that takes the command line's ``section.field`` overrides."""

    def with_overrides(self, **dotted: Any) -> Self:
        """A copy with ``section.field`` values replaced (None values are ignored)."""
        data = self.model_dump()  # type: ignore[attr-defined]
        for key, value in dotted.items():
            if value is not None:
                section, _, leaf = key.partition(".")
                data[section][leaf] = value
        return parse_model(type(self), data)


class VoicesConfig(_Strict):
    default: str = Field("en-us", description="voice for rows that name neither voice nor language")
    by_language: dict[str, str] = Field(
        default_factory=dict, description="language -> voice for rows that name only a language"
    )
    seed: int = 0


class TextConfig(_Strict):
    max_chunk_chars: int = Field(400, ge=20, le=20_000)
    max_chunks_per_row: int = Field(2_000, gt=0)


class OutputConfig(_Strict):
    url: str = Field(
        "out/catalog-demo", description="local folder, s3://bucket/prefix or fsspec URL"
    )
    audio_format: Literal["flac", "wav"] = "flac"
    storage_options: dict[str, Any] = Field(default_factory=dict)


class ShardingConfig(_Strict):
    items_per_shard: int = Field(250, gt=0, le=100_000)
    batch_size: int = Field(32, gt=0, description="items per generator call inside a shard")
    max_tasks: int = Field(
        2_000,
        gt=0,
        description="most shards (Prefect tasks) per run: larger catalogs get larger shards",
    )


class ComputeConfig(_Strict):
    dask_address: str | None = Field(None, description="existing scheduler, e.g. tcp://host:8786")
    n_workers: int | None = Field(None, gt=0, description="LocalCluster workers (default: cores)")
    threads_per_worker: int = Field(1, gt=0)
    memory_limit: str = "auto"
    retries: int = Field(2, ge=0)
    retry_delay_s: float = Field(2.0, ge=0)
    gpu_per_task: int = Field(
        0,
        ge=0,
        description="GPUs a generation/training task needs: it then runs only on workers "
        "declaring a GPU resource (dask worker --resources GPU=1); validation stays on any worker",
    )


class TrackingConfig(_Strict):
    mlflow_tracking_uri: str | None = Field(
        None, description="default: MLFLOW_TRACKING_URI, else SQLite in a local output folder"
    )
    experiment: str = "audio-synth"
    sample_audio: int = Field(4, ge=0, description="audio files logged to MLflow")


class ValidatorSpec(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class GateConfig(_Strict):
    """When a run counts as fit for use. A failed gate fails the flow run (after reports exist)."""

    min_pass_rate: float = Field(0.9, ge=0, le=1, description="share of items passing every check")
    contract: Literal["fail", "warn"] = "fail"
    fairness: Literal["fail", "warn"] = "warn"
    max_privacy_flags: int | None = Field(0, ge=0, description="items over the similarity limit")


class ValidationConfig(_Strict):
    enabled: bool = True
    validators: list[ValidatorSpec] = Field(default_factory=lambda: [ValidatorSpec(name="quality")])
    fairness_attributes: list[str] | None = Field(
        None, description="attributes to break metrics down by (default: those present)"
    )
    n_boot: int = Field(1000, ge=50, le=100_000)
    max_duration_s: float = Field(7200.0, gt=0, description="contract: longest allowed item")
    report_samples: int = Field(8, ge=0, le=32)
    gate: GateConfig = GateConfig()

    @field_validator("validators")
    @classmethod
    def _known_validators(cls, value: list[ValidatorSpec]) -> list[ValidatorSpec]:
        from audio_synth_core.plugins import registry as plugins

        known = plugins.available(plugins.VALIDATORS)
        for spec in value:
            if spec.name not in known:
                raise ValueError(
                    f"unknown validator {spec.name!r}; registered: {', '.join(sorted(known))}"
                )
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"a validator is listed twice: {names}")
        return value


class RunConfig(Overridable, _Strict):
    name: str = Field("catalog", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    catalog: CatalogConfig
    generator: KnownGenerator = GeneratorConfig()
    voices: VoicesConfig = VoicesConfig()
    text: TextConfig = TextConfig()
    output: OutputConfig = OutputConfig()
    sharding: ShardingConfig = ShardingConfig()
    compute: ComputeConfig = ComputeConfig()
    tracking: TrackingConfig = TrackingConfig()
    validation: ValidationConfig = ValidationConfig()
    watermark: WatermarkConfig = WatermarkConfig()
    provenance: ProvenanceConfig = ProvenanceConfig()
    consent: ConsentConfig = ConsentConfig()


def _format_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration {source}:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {where}: {err['msg']}{shown}")
    return "\n".join(lines)


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], data: Any, source: str = "") -> M:
    """Validate a mapping into any config model; a ConfigError names every bad field."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"invalid configuration {source}: expected a mapping, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None


def parse_config(data: Any, source: str = "") -> RunConfig:
    """Validate a mapping into a RunConfig; errors name every bad field."""
    return parse_model(RunConfig, data, source)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Parsed YAML of a config file; unreadable or malformed files are ConfigErrors."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration {path} is not valid YAML: {exc}") from None


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read a YAML config; a relative catalog path is taken relative to the config file."""
    path = Path(path)
    data = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("catalog"), dict):
        cat = data["catalog"].get("path")
        if isinstance(cat, str) and "://" not in cat and not os.path.isabs(cat):
            candidate = path.parent / cat
            if candidate.exists():
                data["catalog"]["path"] = str(candidate.resolve())
    return parse_config(data, str(path))


class ValidateConfig(_Strict):
    """Configuration of ``audio-synth validate`` (the input and output URLs come from the CLI)."""

    name: str = Field("validate", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    validation: ValidationConfig = ValidationConfig(
        validators=[ValidatorSpec(name="quality"), ValidatorSpec(name="intelligibility")]
    )
    sharding: ShardingConfig = ShardingConfig(items_per_shard=100)
    compute: ComputeConfig = ComputeConfig()
    tracking: TrackingConfig = TrackingConfig(experiment="audio-synth-validate")
    input_storage_options: dict[str, Any] = Field(default_factory=dict)
    output_storage_options: dict[str, Any] = Field(default_factory=dict)


def load_validate_config(
    path: str | os.PathLike[str] | None, data: dict | None = None
) -> ValidateConfig:
    """A ValidateConfig from YAML (or a mapping); with neither, the defaults."""
    if path is not None:
        data = read_yaml(path)
    return parse_model(ValidateConfig, data or {}, str(path or ""))


class CorpusConfig(_Strict):
    """Training data: speech made by a generator from texts (a pipeline-made corpus), or any
    dataset ``audio-synth validate`` can read (``dataset_url``)."""

    dataset_url: str | None = None
    texts_path: str | None = Field(
        None, description="CSV/JSONL/Parquet catalog of texts (text column)"
    )
    texts: list[str] = Field(default_factory=list)
    language: str | None = Field("en", description="only catalog rows of this language")
    generator: GeneratorConfig = GeneratorConfig()
    voice: str = "en-us"
    max_utterances: int = Field(200, gt=0)
    max_chunk_chars: int = Field(160, ge=20)


class ModelConfig(_Strict):
    decoder: Literal["deterministic", "vae", "diffusion"] = "deterministic"
    size: Literal["tiny", "small", "base"] = "tiny"
    vocoder: Literal["hifigan", "griffinlim"] = "hifigan"
    seed: int = 0


class RegisterConfig(_Strict):
    model_name: str = "audio-synth-tts"
    alias: str | None = Field("challenger", description="alias set on the new version")
    champion_if_none: bool = Field(True, description="also set 'champion' when no version has it")


class TrainConfig(_Strict):
    name: str = Field("train", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    corpus: CorpusConfig = CorpusConfig()
    model: ModelConfig = ModelConfig()
    acoustic: dict[str, Any] = Field(default_factory=dict, description="AcousticHParams fields")
    vocoder: dict[str, Any] = Field(default_factory=dict, description="VocoderHParams fields")
    registry: RegisterConfig = RegisterConfig()
    compute: ComputeConfig = ComputeConfig()
    tracking: TrackingConfig = TrackingConfig(experiment="audio-synth-train")
    torch_threads: int | None = Field(None, gt=0)


def load_train_config(path: str | os.PathLike[str] | None, data: dict | None = None) -> TrainConfig:
    """A TrainConfig from YAML (paths relative to the file) or a mapping."""
    source = str(path or "")
    if path is not None:
        data = read_yaml(path)
        corpus = (data or {}).get("corpus") or {}
        texts = corpus.get("texts_path")
        if isinstance(texts, str) and "://" not in texts and not os.path.isabs(texts):
            candidate = Path(path).parent / texts
            if candidate.exists():
                corpus["texts_path"] = str(candidate.resolve())
    return parse_model(TrainConfig, data or {}, source)
