"""Delivering a book: per chapter, assembly + mastering + MP3 + WebVTT + ACX check; per book, the
retail sample, the M4B and book.json. Every step takes data and a Store (no Prefect).

Both are content-addressed and idempotent: a chapter whose ``chapter.json`` exists under its key
is returned as it is (an unchanged chapter is never re-assembled); likewise a book's ``book.json``.
Those files are written last, so a crash mid-chapter leaves nothing that looks finished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import resource
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audio_synth_core.audiobook.checks import check_chunks
from audio_synth_core.audiobook.plan import AUDIO_FORMAT, ChapterPlan, ChunkRef
from audio_synth_core.errors import ConfigError
from audio_synth_core.generators.base import Generator
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import Validator
from audio_synth_core.watermark import SCHEME_ID, WatermarkSettings
from audio_synth_core.watermark.payload import payload_of


@dataclass(frozen=True)
class BookMeta:
    """Tags every file of a book carries."""

    book_id: str
    title: str
    author: str | None = None
    narrator: str | None = None
    year: str | None = None
    language: str = "en"
    publisher: str | None = None
    tracks: int = 1


@dataclass(frozen=True)
class DeliverySpec:
    """How chapters are checked and mastered (the run config's delivery sections)."""

    mastering: dict[str, Any] = field(default_factory=dict)
    bitrate_kbps: int = 192
    retry_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class C2paSpec:
    """What signs and fills each deliverable's C2PA manifest: the certificate chain and key
    (provenance.c2pa.C2paMaterial), the generator, and the watermark's scheme and key fingerprint
    (never the key). Holds a private key: it reaches workers sealed, never as a flow parameter."""

    material: Any = field(repr=False)
    generator: str
    generator_version: str | None = None
    watermark_fingerprint: str | None = None  # None: the run's audio is not watermarked


def c2pa_record(
    c2pa: C2paSpec,
    meta: BookMeta,
    chunks: Sequence[ChunkRef],
    takes: Mapping[str, str],
    **where: Any,
) -> dict[str, Any]:
    """The provenance record in a deliverable's manifest: generator, voice, book and place in it,
    and the watermark (scheme, the payloads its chunks carry, the key fingerprint)."""
    used = [takes.get(c.item_id, c.item_id) for c in chunks]
    # Hex text: c2pa-rs reads a JSON array of integers back as a byte string.
    payloads = [f"{payload_of(i):08x}" for i in used]
    mark = None
    if c2pa.watermark_fingerprint is not None and payloads:
        # c2pa.soft-binding takes one payload (the first chunk's); all of them are listed.
        mark = {
            "scheme": SCHEME_ID,
            "payload": payload_of(used[0]),
            "payloads": payloads,
            "key_fingerprint": c2pa.watermark_fingerprint,
        }
    return {
        "schema": "audio-synth.audiobook-provenance/1",
        "generator": {"name": c2pa.generator, "version": c2pa.generator_version},
        "voice": sorted({c.voice for c in chunks}),
        "language": meta.language,
        "book": {"book_id": meta.book_id, "title": meta.title, "author": meta.author},
        **where,
        "chunk_ids": used,
        "watermark": mark,
        "digital_source_type": "trainedAlgorithmicMedia",
    }


def mastering_settings(values: Mapping[str, Any]) -> Any:
    """``MasteringSettings`` from the config's ``mastering`` mapping (a ConfigError names a bad
    field)."""
    from audio_synth_core.mastering import MasteringSettings

    try:
        return MasteringSettings(**dict(values))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid mastering settings: {exc}") from None


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _segments(chunks: Sequence[ChunkRef], takes: Mapping[str, str]) -> list[Any]:
    from audio_synth_core.mastering import Segment

    return [
        Segment(
            layout.audio(takes.get(c.item_id, c.item_id), AUDIO_FORMAT), c.script, c.pause_after_s
        )
        for c in chunks
    ]


def _deliver_parts(
    store: Store,
    parts: Sequence[Any],
    title: str,
    track: int,
    meta: BookMeta,
    spec: DeliverySpec,
    aac: bool = True,
    c2pa: tuple[C2paSpec, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """MP3 (+ the AAC ``.m4a`` the book's M4B is copied from, from the same decode) + WebVTT +
    ACX check of each mastered part. With ``c2pa`` (spec, record), the MP3 gets an embedded
    manifest before its hash is taken and its ACX check runs, the FLAC a ``.c2pa`` sidecar."""
    from audio_synth_core.mastering import acx, encode, subtitles
    from audio_synth_core.provenance.c2pa import attach_c2pa

    files = []
    for i, part in enumerate(parts, start=1):
        stem = part.flac_rel.rsplit(".", 1)[0]
        part_title = title if len(parts) == 1 else f"{title} (part {i})"
        tags = {"title": part_title, "track": f"{track}/{meta.tracks}", **_book_tags(meta)}
        mp3, m4a = encode.encode_retail(
            store, part.flac_rel, f"{stem}.mp3", tags, aac_rel=f"{stem}.m4a" if aac else None
        )
        mp3_sha, sidecar = mp3.sha256, {}
        if c2pa is not None:
            spec_, record = c2pa
            record = {**record, "title": part_title, "part": i, "parts": len(parts)}
            mp3_sha = attach_c2pa(store, mp3.rel, record, spec_.material)
            attach_c2pa(store, part.flac_rel, record, spec_.material)
            sidecar = {"c2pa": layout.c2pa_sidecar(part.flac_rel)}
        vtt_rel = f"{stem}.vtt"
        store.write_bytes(vtt_rel, subtitles.webvtt(part.cues).encode("utf-8"))
        checked = acx.check_file(store, mp3.rel)  # the file as delivered, manifest included
        files.append(
            {
                "title": part_title,
                "flac": part.flac_rel,
                "flac_sha256": part.sha256,
                "duration_s": part.duration_s,
                "mp3": mp3.rel,
                "mp3_sha256": mp3_sha,
                "mp3_duration_s": mp3.duration_s,
                **({"m4a": m4a.rel, "m4a_sha256": m4a.sha256} if m4a else {}),
                "vtt": vtt_rel,
                **sidecar,
                "cues": [_cue(c) for c in part.cues],
                "levels": _plain(part.levels),
                "acx": {"passed": checked.passed, "rules": checked.rules},
            }
        )
    return files


def _book_tags(meta: BookMeta) -> dict[str, str]:
    """Tags shared by every file of a book (empty ones left out)."""
    tags = {
        "album": meta.title,
        "author": meta.author,
        "narrator": meta.narrator,
        "date": meta.year,
        "publisher": meta.publisher,
        "language": meta.language,
    }
    return {k: v for k, v in tags.items() if v}


def _cue(cue: Any) -> dict[str, Any]:
    return _plain(cue)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def deliver_chapter(
    store: Store,
    chapter: ChapterPlan,
    meta: BookMeta,
    track: int,
    spec: DeliverySpec,
    generator: Generator,
    validators: Sequence[Validator],
    watermark: WatermarkSettings | None = None,
    c2pa: C2paSpec | None = None,
) -> dict[str, Any]:
    """Check, assemble, master, encode and ACX-check one chapter (or credits); its chapter.json."""
    from audio_synth_core.mastering import master_chapter

    done = layout.audiobook_chapter_done(chapter.book_id, chapter.key)
    if store.exists(done):
        return {**store.read_json(done), "reused": True, "worker": _worker()}
    checks = check_chunks(
        store, chapter.chunks, validators, generator, spec.retry_params, watermark
    )
    takes = {c.item_id: c.used_id for c in checks}
    stem = layout.audiobook_chapter_stem(chapter.book_id, chapter.key, chapter.slot)
    parts = master_chapter(
        store, _segments(chapter.chunks, takes), stem, mastering_settings(spec.mastering)
    )
    where = {"chapter": chapter.number, "slot": chapter.slot, "chapter_title": chapter.title}
    signing = (c2pa, c2pa_record(c2pa, meta, chapter.chunks, takes, **where)) if c2pa else None
    files = _deliver_parts(store, parts, chapter.title, track, meta, spec, c2pa=signing)
    result = {
        "book_id": chapter.book_id,
        "number": chapter.number,
        "slot": chapter.slot,
        "title": chapter.title,
        "key": chapter.key,
        "track": track,
        "words": chapter.words,
        "chunks": len(chapter.chunks),
        "chunk_ids": [c.item_id for c in chapter.chunks],
        "duration_s": sum(f["duration_s"] for f in files),
        "files": files,
        "acx_passed": all(f["acx"]["passed"] for f in files),
        "checks": [c.as_dict() for c in checks],
        "retried": sum(c.retried for c in checks),
        "flagged": [c.item_id for c in checks if c.flagged],
    }
    store.write_json(done, result)
    return {**result, "reused": False, "worker": _worker(), "peak_rss_mb": peak_rss_mb()}


def sample_chunks(
    chunks: Sequence[ChunkRef], durations: Mapping[str, float], max_s: float, overhead_s: float
) -> list[ChunkRef]:
    """The longest prefix of ``chunks`` whose speech, pauses and room tone fit in ``max_s``."""
    total, out = overhead_s, []
    for c in chunks:
        total += durations.get(c.item_id, 0.0) + c.pause_after_s
        if total > max_s:
            break
        out.append(c)
    if out:  # the sample ends on its last chunk: no trailing pause
        last = out[-1]
        out[-1] = dataclasses.replace(last, pause_after_s=0.0)
    return out


def deliver_book(
    store: Store,
    book_key: str,
    meta: BookMeta,
    chapters: Sequence[Mapping[str, Any]],
    sample: Sequence[ChunkRef],
    takes: Mapping[str, str],
    durations: Mapping[str, float],
    sample_limits: tuple[float, float],
    spec: DeliverySpec,
    c2pa: C2paSpec | None = None,
) -> dict[str, Any]:
    """Retail sample, M4B and book.json of one book from its delivered chapters (in order)."""
    from audio_synth_core.mastering import encode, master_chapter

    done = layout.audiobook_book_json(meta.book_id, book_key)
    if store.exists(done):
        return {**store.read_json(done), "reused": True}
    settings = mastering_settings(spec.mastering)
    min_s, max_s = sample_limits
    warnings = []
    overhead = float(getattr(settings, "head_s", 1.0)) + float(getattr(settings, "tail_s", 3.0))
    picked = sample_chunks(sample, durations, max_s - 1.0, overhead)
    sample_file = None
    if picked:
        stem = layout.audiobook_edition_file(meta.book_id, book_key, "sample")
        parts = master_chapter(store, _segments(picked, takes), stem, settings)
        sample_meta = dataclasses.replace(meta, tracks=1)
        where = {"chapter": None, "slot": "sample"}
        signing = (c2pa, c2pa_record(c2pa, meta, picked, takes, **where)) if c2pa else None
        sample_file = _deliver_parts(
            store, parts[:1], f"{meta.title} (sample)", 1, sample_meta, spec, False, signing
        )[0]
        if sample_file["duration_s"] < min_s:
            warnings.append(
                f"retail sample is {sample_file['duration_s']:.1f} s, under {min_s:g} s: "
                "the book is too short for a full sample"
            )
    m4b_rel = layout.audiobook_edition_file(meta.book_id, book_key, "book.m4b")
    marks_in = [(f["title"], f["flac"]) for c in chapters for f in c["files"]]
    metadata = {"title": meta.title, **_book_tags(meta)}
    metadata.pop("album")
    aac = [f.get("m4a") for c in chapters for f in c["files"]]
    # Chapters delivered with their AAC are copied into the book; older ones are encoded here.
    marks = encode.build_m4b(store, marks_in, m4b_rel, metadata, aac=None if None in aac else aac)
    m4b_bytes = store.read_bytes(m4b_rel)
    files = []
    for c in chapters:
        for f in c["files"]:
            kind = "credits" if c["slot"] in ("opening", "closing") else "chapter"
            for fmt in ("flac", "mp3", "m4a", "vtt", "c2pa"):
                if fmt not in f:
                    continue
                files.append(
                    {
                        "path": f[fmt],
                        "kind": f"{kind}-{fmt}",
                        "chapter": c["number"],
                        "title": f["title"],
                        "duration_s": f["mp3_duration_s"] if fmt == "mp3" else f["duration_s"],
                        "sha256": f.get(f"{fmt}_sha256") or _sha256(store, f[fmt]),
                        "acx_passed": f["acx"]["passed"] if fmt == "mp3" else None,
                    }
                )
    if sample_file is not None:
        for fmt in ("flac", "mp3", "c2pa"):
            if fmt not in sample_file:
                continue
            files.append(
                {
                    "path": sample_file[fmt],
                    "kind": f"sample-{fmt}",
                    "chapter": None,
                    "title": sample_file["title"],
                    "duration_s": sample_file["duration_s"],
                    "sha256": sample_file.get(f"{fmt}_sha256") or _sha256(store, sample_file[fmt]),
                    "acx_passed": sample_file["acx"]["passed"] if fmt == "mp3" else None,
                }
            )
    m4b_duration = marks[-1].end_s if marks else 0.0
    files.append(
        {
            "path": m4b_rel,
            "kind": "m4b",
            "chapter": None,
            "title": meta.title,
            "duration_s": m4b_duration,
            "sha256": hashlib.sha256(m4b_bytes).hexdigest(),
            "acx_passed": None,
        }
    )
    book = {
        "book_id": meta.book_id,
        "key": book_key,
        **dataclasses.asdict(meta),
        "m4b": m4b_rel,
        "book_json": done,
        "m4b_chapters": [_plain(m) for m in marks],
        "sample": sample_file,
        "warnings": warnings,
        "duration_s": sum(c["duration_s"] for c in chapters),
        "files": files,
    }
    store.write_json(done, book)
    return {**book, "reused": False, "peak_rss_mb": peak_rss_mb(), "worker": _worker()}


def _sha256(store: Store, rel: str) -> str:
    return hashlib.sha256(store.read_bytes(rel)).hexdigest()


def takes_of(chapters: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Planned chunk id -> the take assembled, over delivered chapters."""
    return {c["item_id"]: c["used_id"] for ch in chapters for c in ch.get("checks", [])}
