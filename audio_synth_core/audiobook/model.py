"""What a book is once read: chapters of paragraphs, plus the manifest that came with it."""

from __future__ import annotations

from dataclasses import dataclass, field

from audio_synth_core.config.audiobook import BookManifest
from audio_synth_core.errors import AudioSynthError


class BookError(AudioSynthError):
    """A book cannot be narrated at all (corrupt, DRM-encrypted, image-only, no text); the
    message names the book."""


@dataclass(frozen=True)
class RawChapter:
    """A chapter as a reader found it; ``note`` says why it has no text (e.g. "image only")."""

    title: str
    paragraphs: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class Chapter:
    """A chapter in reading order (``number`` 1-based) after the manifest's overrides."""

    number: int
    title: str
    paragraphs: tuple[str, ...]
    voice: str | None = None
    skipped_reason: str | None = None  # set: reported by name, not narrated

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


@dataclass(frozen=True)
class Book:
    book_id: str
    source: str
    format: str
    title: str
    author: str | None
    language: str
    chapters: tuple[Chapter, ...]
    manifest: BookManifest = field(default_factory=BookManifest)
    source_sha256: str = ""

    @property
    def narrated(self) -> tuple[Chapter, ...]:
        return tuple(c for c in self.chapters if c.skipped_reason is None)

    @property
    def words(self) -> int:
        return sum(c.words for c in self.narrated)

    def chapter_list(self) -> list[dict[str, object]]:
        """The chapter list with word counts: the first thing a run reports."""
        return [
            {
                "number": c.number,
                "title": c.title,
                "words": c.words,
                "skipped": c.skipped_reason,
            }
            for c in self.chapters
        ]
