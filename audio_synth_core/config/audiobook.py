"""Typed configuration of an audiobook run and of one book's manifest (``book.yaml``).

The run config says how books are narrated and delivered (engine, pauses, mastering, checks, where
outputs go); the book manifest says what one book is (title, author, voice, chapter overrides,
credits, retail sample, pronunciation lexicon). Both reject unknown keys, naming them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audio_synth_core.config.models import (
    ComputeConfig,
    GeneratorConfig,
    KnownGenerator,
    Overridable,
    TrackingConfig,
    parse_model,
    read_yaml,
)
from audio_synth_core.config.responsible import ConsentConfig, ProvenanceConfig, WatermarkConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- the book manifest -----------------------------------------------------------------------------


class LexiconEntry(_Strict):
    """One pronunciation rule: a whole word (case-insensitive) or a regex, and what to say
    instead: a respelling ("Hermione" -> "her my oh nee") or espeak phonemes ``[[h3:m'aI@ni]]``."""

    word: str | None = Field(None, min_length=1)
    regex: str | None = Field(None, min_length=1)
    say: str = Field(min_length=1)
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _one_pattern(self) -> LexiconEntry:
        if (self.word is None) == (self.regex is None):
            raise ValueError("a lexicon entry needs exactly one of 'word' or 'regex'")
        return self


class ChapterOverride(_Strict):
    """Changes to one chapter, by its number (1-based, in reading order)."""

    number: int = Field(ge=1)
    title: str | None = None
    voice: str | None = None
    persona: str | None = Field(
        None, description="persona (name@N, name@latest, name) narrating this chapter"
    )
    skip: bool = Field(False, description="leave this chapter out of the audiobook (reported)")


class CreditsConfig(_Strict):
    opening: str | None = Field(
        None, description="opening credits text (default: title, author, narrator)"
    )
    closing: str | None = Field(None, description="closing credits text (default: 'The end ...')")


class RetailSampleConfig(_Strict):
    chapter: int = Field(1, ge=1, description="chapter the sample starts at")
    min_s: float = Field(60.0, ge=1.0, le=300.0)
    max_s: float = Field(300.0, ge=1.0, le=300.0)


class BookManifest(_Strict):
    """``book.yaml`` beside a manuscript (every field optional except where it says)."""

    source: str | None = Field(
        None, description="manuscript file (EPUB, Markdown, text), relative to book.yaml"
    )
    title: str | None = None
    author: str | None = None
    narrator: str | None = Field(None, description="narrator name for the credits and tags")
    voice: str | None = Field(None, description="narrator voice (generator voice name)")
    persona: str | None = Field(
        None,
        description="narrator persona (name@N, name@latest, name): its voice and parameters; "
        "overrides this manifest's voice",
    )
    dialogue_voice: str | None = Field(None, description="voice for quoted dialogue")
    language: str | None = None
    publisher: str | None = None
    year: str | None = None
    chapters: list[ChapterOverride] = Field(default_factory=list)
    credits: CreditsConfig = CreditsConfig()
    retail_sample: RetailSampleConfig = RetailSampleConfig()
    lexicon: list[LexiconEntry] = Field(default_factory=list)
    lexicon_version: str | None = Field(
        None, description="your label of the lexicon (the content hash is always recorded)"
    )

    @field_validator("chapters")
    @classmethod
    def _unique_chapters(cls, value: list[ChapterOverride]) -> list[ChapterOverride]:
        numbers = [c.number for c in value]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"a chapter is overridden twice: {numbers}")
        return value


def load_book_manifest(path: str | os.PathLike[str]) -> BookManifest:
    """A ``book.yaml`` (an empty file is a manifest of defaults)."""
    data = read_yaml(path)
    return parse_model(BookManifest, data or {}, str(path))


# -- the run config --------------------------------------------------------------------------------


class PausesConfig(_Strict):
    """Silence after each chunk, by the boundary that follows it."""

    title_s: float = Field(1.5, ge=0, le=10)
    sentence_s: float = Field(0.45, ge=0, le=5)
    paragraph_s: float = Field(1.0, ge=0, le=10)
    dialogue_s: float = Field(0.15, ge=0, le=5, description="between dialogue and narration")


class AudiobookTextConfig(_Strict):
    max_chunk_chars: int = Field(
        300, ge=40, le=5000, description="a longer sentence is cut at clauses"
    )
    min_chapter_words: int = Field(
        1, ge=1, description="fewer words: the chapter is reported as empty"
    )


class IntelligibilityConfig(_Strict):
    enabled: bool = True
    max_wer: float = Field(0.5, ge=0)
    retry_params: dict[str, Any] = Field(
        default_factory=lambda: {"rate_wpm": 140},
        description="generator parameters a chunk over max_wer is regenerated with, once",
    )


class AudiobookOutputConfig(_Strict):
    url: str = Field("out/audiobook-demo", description="folder, s3://bucket/prefix or fsspec URL")
    storage_options: dict[str, Any] = Field(default_factory=dict)


class AudiobookSharding(_Strict):
    # Small shards: a crash loses at most the chunks of the shards in flight.
    items_per_shard: int = Field(8, gt=0, le=10_000)
    batch_size: int = Field(8, gt=0)
    max_tasks: int = Field(2_000, gt=0)


class AudiobookGate(_Strict):
    acx: Literal["fail", "warn"] = Field("fail", description="every delivered file passes ACX")


class AudiobookConfig(Overridable, _Strict):
    name: str = Field("audiobook", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    generator: KnownGenerator = GeneratorConfig()
    voice: str = Field("en-us", description="narrator voice when the book names none")
    persona: str | None = Field(
        None,
        description="narrator persona when the book names no voice or persona (overrides voice)",
    )
    language: str = Field("en", description="language when the book names none")
    text: AudiobookTextConfig = AudiobookTextConfig()
    pauses: PausesConfig = PausesConfig()
    mastering: dict[str, Any] = Field(
        default_factory=dict, description="MasteringSettings fields (audio_synth_core.mastering)"
    )
    mp3_bitrate_kbps: int = Field(192, ge=64, le=320)
    intelligibility: IntelligibilityConfig = IntelligibilityConfig()
    output: AudiobookOutputConfig = AudiobookOutputConfig()
    input_storage_options: dict[str, Any] = Field(default_factory=dict)
    sharding: AudiobookSharding = AudiobookSharding()
    compute: ComputeConfig = ComputeConfig()
    tracking: TrackingConfig = TrackingConfig(experiment="audio-synth-audiobook")
    gate: AudiobookGate = AudiobookGate()
    watermark: WatermarkConfig = WatermarkConfig()
    provenance: ProvenanceConfig = ProvenanceConfig()
    consent: ConsentConfig = ConsentConfig()


def load_audiobook_config(
    path: str | os.PathLike[str] | None, data: dict | None = None
) -> AudiobookConfig:
    """An AudiobookConfig from YAML (or a mapping); with neither, the defaults."""
    if path is not None:
        data = read_yaml(Path(path))
    return parse_model(AudiobookConfig, data or {}, str(path or ""))
