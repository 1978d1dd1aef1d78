"""Planning an audiobook run: books -> chapters -> chunk items (one per sentence or piece of a
long sentence) in the item schema, with content ids, and the keys that decide what is rebuilt.

An item id hashes what decides its audio (the text after normalization and lexicon, voice,
language, generator name/version/params, seed, format) and not its position, so inserting a
sentence regenerates only that sentence and a lexicon change only the chunks whose text it changes.
A chapter key hashes its chunk ids, pauses, title and delivery settings: an unchanged chapter keeps
its deliverables; a book key does the same for the M4B, the retail sample and book.json.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from audio_synth_core.audiobook.lexicon import Lexicon, build_lexicon
from audio_synth_core.audiobook.model import Book, Chapter
from audio_synth_core.config.audiobook import AudiobookConfig
from audio_synth_core.generators.base import Generator
from audio_synth_core.inputs import text as textprep
from audio_synth_core.pipeline.planning import STATUS_PENDING
from audio_synth_core.pipeline.runs import ShardSpec, make_shards
from audio_synth_core.store import ids, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.voices.personas import PersonaChoices, PersonaError

# Bump when chunking, pauses or delivery logic change what a chapter's files are.
PLANNER_VERSION = 1
AUDIO_FORMAT = "flac"
OPENING, CLOSING = "opening", "closing"
_QUOTED = re.compile(r'("[^"]+")')


@dataclass(frozen=True)
class ChunkRef:
    """One chunk of a chapter, in order: what assembly needs (no audio)."""

    item_id: str
    text: str  # sent to the engine (after lexicon)
    script: str  # as written (after normalization): what intelligibility compares against
    voice: str
    language: str
    pause_after_s: float
    kind: str  # title | text | credits
    params: str = ""  # generator params JSON of this chunk (a persona's differ from the run's)
    persona: str | None = None  # "name@version" of the persona narrating it


@dataclass(frozen=True)
class _Narrator:
    """Who speaks a chunk: a voice with the generator params it is made with, maybe a persona."""

    voice: str
    params: str
    persona: str | None = None


@dataclass(frozen=True)
class ChapterPlan:
    book_id: str
    number: int  # 0: opening credits, 1..n chapters, n+1: closing credits
    slot: str  # "opening", "closing" or the zero-padded chapter number: file names
    title: str
    chunks: tuple[ChunkRef, ...]
    key: str  # content key of the chapter's deliverables

    @property
    def words(self) -> int:
        return sum(len(c.script.split()) for c in self.chunks if c.kind != "title")


@dataclass(frozen=True)
class BookPlan:
    book: Book
    lexicon_version: str
    chapters: tuple[ChapterPlan, ...]  # opening credits, narrated chapters, closing credits
    sample_chunks: tuple[ChunkRef, ...]
    key: str

    @property
    def book_id(self) -> str:
        return self.book.book_id


@dataclass(frozen=True)
class AudiobookPlan:
    run_id: str
    items: pa.Table
    shards: list[ShardSpec]
    books: tuple[BookPlan, ...]
    delivery: dict[str, Any] = field(default_factory=dict)


def delivery_settings(cfg: AudiobookConfig) -> dict[str, Any]:
    """Everything besides the chunks that decides a chapter's files."""
    return {
        "planner": PLANNER_VERSION,
        "mastering": cfg.mastering,
        "mp3_bitrate_kbps": cfg.mp3_bitrate_kbps,
        "intelligibility": cfg.intelligibility.model_dump(mode="json"),
    }


def _pieces(paragraph: str, language: str, max_chars: int) -> list[str]:
    out = []
    for sentence in textprep.split_sentences(textprep.normalize(paragraph), language):
        out.extend(textprep.chunk(sentence, language, max_chars=max_chars) or [])
    return out


def _dialogue_split(sentence: str) -> list[tuple[str, bool]]:
    """(piece, is_dialogue) of a sentence: quoted stretches apart from the narration."""
    out = []
    for part in _QUOTED.split(sentence):
        part = part.strip()
        if part and any(ch.isalnum() for ch in part):
            out.append((part, part.startswith('"')))
    return out or [(sentence, False)]


class _Chunker:
    """Turns chapters into ChunkRefs with ids (repeated identical chunks get distinct ids)."""

    def __init__(
        self,
        cfg: AudiobookConfig,
        generator: Generator,
        book: Book,
        lexicon: Lexicon,
        marks: str | None = None,
        choices: PersonaChoices | None = None,
    ) -> None:
        self.cfg, self.book, self.lexicon, self.marks = cfg, book, lexicon, marks
        self.gen = generator.describe()
        self.params = json.dumps(self.gen["params"], sort_keys=True)
        self.generator = generator
        self.choices = choices
        self.seen: dict[str, int] = {}
        m = book.manifest
        # The most specific level wins; within a level a persona overrides a voice.
        if m.persona:
            self.voice = self._persona(m.persona)
        elif m.voice or not cfg.persona:
            self.voice = self._voice(m.voice or cfg.voice)
        else:
            self.voice = self._persona(cfg.persona)
        dialogue = m.dialogue_voice
        self.dialogue_voice = self._voice(dialogue) if dialogue else None
        self.chapter_personas = {o.number: o.persona for o in m.chapters if o.persona}

    def _voice(self, name: str) -> _Narrator:
        """``name`` as given (a variant such as ``+f3`` kept), after the generator accepts it."""
        self.generator.resolve_voice(name, None)
        return _Narrator(name, self.params)

    def _persona(self, ref: str) -> _Narrator:
        """The persona's voice and params; a PersonaError (naming the book) if it cannot be used."""
        if self.choices is None:
            raise PersonaError(f"book {self.book.book_id!r}: no persona registry for {ref!r}")
        chosen = self.choices.choose(ref)
        if isinstance(chosen, str):
            raise PersonaError(f"book {self.book.book_id!r}: persona {ref!r}: {chosen}")
        persona, voice, _language, params = chosen
        return _Narrator(voice, params, persona.ref)

    def ref(self, script: str, who: _Narrator, pause: float, kind: str) -> ChunkRef:
        spoken = self.lexicon.apply(script)
        seed = ids.seed_of("audiobook", spoken)
        content = (
            spoken,
            who.voice,
            self.book.language,
            self.gen["name"],
            self.gen["version"],
            who.params,
            seed,
            AUDIO_FORMAT,
            # A persona's version is part of the id: a new version regenerates its chunks.
            *([who.persona] if who.persona else []),
            # What is applied to every clip after synthesis (the watermark): changing it
            # regenerates the audio.
            *([self.marks] if self.marks else []),
        )
        base = ids.content_id(*content)
        nth = self.seen.get(base, 0)
        self.seen[base] = nth + 1
        item_id = base if nth == 0 else ids.content_id(*content, nth)
        return ChunkRef(
            item_id,
            spoken,
            script,
            who.voice,
            self.book.language,
            pause,
            kind,
            who.params,
            who.persona,
        )

    def chapter(self, chapter: Chapter) -> list[ChunkRef]:
        p = self.cfg.pauses
        if chapter.number in self.chapter_personas:
            voice = self._persona(self.chapter_personas[chapter.number])
        else:
            voice = self._voice(chapter.voice) if chapter.voice else self.voice
        refs = [self.ref(chapter.title, voice, p.title_s, "title")]
        for paragraph in chapter.paragraphs:
            pieces = _pieces(paragraph, self.book.language, self.cfg.text.max_chunk_chars)
            for i, piece in enumerate(pieces):
                end = p.paragraph_s if i == len(pieces) - 1 else p.sentence_s
                parts = _dialogue_split(piece) if self.dialogue_voice else [(piece, False)]
                for j, (part, spoken_dialogue) in enumerate(parts):
                    pause = end if j == len(parts) - 1 else p.dialogue_s
                    v = self.dialogue_voice if spoken_dialogue else voice
                    refs.append(self.ref(part, v or voice, pause, "text"))
        return _end(refs)

    def credits(self, text: str) -> list[ChunkRef]:
        pieces = _pieces(text, self.book.language, self.cfg.text.max_chunk_chars)
        refs = [self.ref(t, self.voice, self.cfg.pauses.sentence_s, "credits") for t in pieces]
        return _end(refs)


def _end(refs: list[ChunkRef]) -> list[ChunkRef]:
    """No pause after a chapter's last chunk: mastering adds the tail room tone."""
    if refs:
        refs[-1] = dataclasses.replace(refs[-1], pause_after_s=0.0)
    return refs


def opening_text(book: Book) -> str:
    m = book.manifest
    if m.credits.opening:
        return m.credits.opening
    by = f" Written by {book.author}." if book.author else ""
    narrator = f" Narrated by {m.narrator}." if m.narrator else " Narrated by a synthetic voice."
    return f"{book.title}.{by}{narrator}"


def closing_text(book: Book) -> str:
    m = book.manifest
    if m.credits.closing:
        return m.credits.closing
    by = f", written by {book.author}" if book.author else ""
    return f"This has been {book.title}{by}. The end."


def plan_book(
    cfg: AudiobookConfig,
    generator: Generator,
    book: Book,
    marks: str | None = None,
    choices: PersonaChoices | None = None,
) -> BookPlan:
    """Chapters of one book as chunk refs with keys (credits first and last). ``choices``:
    the run's personas (needed when the book or config names one)."""
    lexicon = build_lexicon(book.manifest.lexicon, book.manifest.lexicon_version)
    chunker = _Chunker(cfg, generator, book, lexicon, marks, choices)
    delivery = delivery_settings(cfg)
    parts: list[tuple[int, str, str, list[ChunkRef]]] = [
        (0, OPENING, "Opening Credits", chunker.credits(opening_text(book)))
    ]
    width = max(2, len(str(len(book.chapters))))
    for chapter in book.narrated:
        slot = f"{chapter.number:0{width}d}"
        parts.append((chapter.number, slot, chapter.title, chunker.chapter(chapter)))
    closing_no = len(book.chapters) + 1
    parts.append((closing_no, CLOSING, "Closing Credits", chunker.credits(closing_text(book))))
    chapters = []
    for number, slot, title, refs in parts:
        key = ids.content_id(
            "chapter",
            book.book_id,
            slot,
            title,
            [(r.item_id, r.pause_after_s) for r in refs],
            delivery,
        )
        chapters.append(ChapterPlan(book.book_id, number, slot, title, tuple(refs), key))
    sample = _sample_chunks(book, chapters)
    meta = {
        "title": book.title,
        "author": book.author,
        "narrator": book.manifest.narrator,
        "publisher": book.manifest.publisher,
        "year": book.manifest.year,
        "language": book.language,
        "sample": book.manifest.retail_sample.model_dump(mode="json"),
    }
    key = ids.content_id(
        "book",
        book.book_id,
        [c.key for c in chapters],
        [r.item_id for r in sample],
        meta,
        delivery,
    )
    return BookPlan(book, lexicon.version, tuple(chapters), sample, key)


def _sample_chunks(book: Book, chapters: Sequence[ChapterPlan]) -> tuple[ChunkRef, ...]:
    """The retail sample's chunks: from the chosen chapter (or the first narrated one after it)
    onwards, without credits; the sample task cuts it to length by measured durations."""
    wanted = book.manifest.retail_sample.chapter
    narrated = [c for c in chapters if c.slot not in (OPENING, CLOSING)]
    start = next((i for i, c in enumerate(narrated) if c.number >= wanted), 0)
    refs = [r for c in narrated[start:] for r in c.chunks]
    return tuple(refs[:2000])  # far more than 5 minutes of speech


_PER_ITEM = (
    "id", "catalog_id", "chunk_index", "text", "voice", "language", "seed", "attributes",
    "persona", "generator_params",
)  # fmt: skip


def items_table(books: Sequence[BookPlan], gen: dict[str, Any]) -> pa.Table:
    """Every chunk of every book as rows of the item schema (measurements null until made)."""
    cols: dict[str, list[Any]] = {c: [] for c in _PER_ITEM}
    for bp in books:
        for chapter in bp.chapters:
            for index, ref in enumerate(chapter.chunks):
                attrs = {
                    "book": bp.book_id,
                    "chapter": chapter.number,
                    "chapter_slot": chapter.slot,
                    "chapter_title": chapter.title,
                    "kind": ref.kind,
                    "pause_after_s": ref.pause_after_s,
                    "script": ref.script,
                    "lexicon_version": bp.lexicon_version,
                }
                values = {
                    "id": ref.item_id,
                    "catalog_id": f"{bp.book_id}/{chapter.slot}",
                    "chunk_index": index,
                    "text": ref.text,
                    "voice": ref.voice,
                    "language": ref.language,
                    "seed": ids.seed_of("audiobook", ref.text),
                    "attributes": json.dumps(attrs, sort_keys=True),
                    "persona": ref.persona,
                    "generator_params": ref.params or json.dumps(gen["params"], sort_keys=True),
                }
                for c in _PER_ITEM:
                    cols[c].append(values[c])
    constant = {
        "generator": gen["name"],
        "generator_version": gen["version"],
        "audio_format": AUDIO_FORMAT,
        "status": STATUS_PENDING,
        "change": schema.CHANGE_NEW,
    }
    return pa.Table.from_arrays(schema.item_arrays(cols, constant), schema=schema.ITEM_SCHEMA)


def build_plan(
    cfg: AudiobookConfig,
    generator: Generator,
    books: Sequence[Book],
    marks: str | None = None,
    registry: Store | None = None,
) -> AudiobookPlan:
    """The run's plan: items, shards and per-book chapter plans. Deterministic: the run id is a
    hash of every item id, chapter key and book key. ``marks``: the watermark's identity (part of
    every item id). ``registry``: where personas and consent records live (None: personas
    cannot be named). A ConsentError when a persona imitating a real person has no valid
    consent for the use "audiobook": raised here, before any narration."""
    choices = PersonaChoices(registry, generator)
    plans = tuple(plan_book(cfg, generator, b, marks, choices) for b in books)
    choices.require_consent("audiobook")
    items = items_table(plans, generator.describe())
    per_shard = max(cfg.sharding.items_per_shard, -(-items.num_rows // cfg.sharding.max_tasks))
    keys = [bp.key for bp in plans] + [c.key for bp in plans for c in bp.chapters]
    digest = ids.stream_digest(
        items.column("id").to_pylist() + keys, per_shard, schema.SCHEMA_VERSION
    )
    run_id = ids.run_id(cfg.name, digest)
    shards = make_shards(run_id, items.num_rows, per_shard)
    return AudiobookPlan(run_id, items, shards, plans, delivery_settings(cfg))
