"""Finding books in a file, folder or bucket, and reading each into chapters.

What counts as a book:
- a manuscript file (``.epub``, ``.md``/``.markdown``, ``.txt``); a ``book.yaml`` beside it whose
  ``source`` names it is its manifest;
- a ``book.yaml`` (or a folder holding one): its ``source``, else the folder's only manuscript;
- a folder without ``book.yaml`` (a manuscripts folder): every book in it, one level down.

A chapter without text is kept in the chapter list with the reason (reported by name); a book with
no text at all, a corrupt file or a DRM-encrypted EPUB raises a BookError naming the book.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from typing import Any

import fsspec
import yaml

from audio_synth_core.audiobook.epub import read_epub
from audio_synth_core.audiobook.markup import read_markdown, read_text
from audio_synth_core.audiobook.model import Book, BookError, Chapter, RawChapter
from audio_synth_core.config.audiobook import BookManifest
from audio_synth_core.config.models import parse_model
from audio_synth_core.errors import ConfigError
from audio_synth_core.store.storage import object_store_options

MANIFEST = "book.yaml"
FORMATS = {".epub": "epub", ".md": "markdown", ".markdown": "markdown", ".txt": "text"}


@dataclass(frozen=True)
class BookSource:
    book_id: str
    source: str  # URL or path of the manuscript
    manifest: str | None = None  # URL or path of its book.yaml


def slug(name: str) -> str:
    """A book id from a file or folder name: lower-case letters, digits and dashes."""
    out = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return out[:64] or "book"


def _fs(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    options = object_store_options(url, dict(storage_options or {}), fail_fast=True)
    return fsspec.core.url_to_fs(url, **options)


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _ext(path: str) -> str:
    return posixpath.splitext(path.lower())[1]


def _read_manifest_at(fs: Any, path: str, shown: str) -> BookManifest:
    try:
        data = yaml.safe_load(fs.cat_file(path).decode("utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"book manifest {shown} is not valid YAML: {exc}") from None
    return parse_model(BookManifest, data or {}, shown)


def _manifest_book(fs: Any, folder: str, url_folder: str, book_id: str) -> BookSource:
    manifest_path = _join(folder, MANIFEST)
    manifest = _read_manifest_at(fs, manifest_path, _join(url_folder, MANIFEST))
    if manifest.source:
        source = _join(url_folder, manifest.source)
    else:
        names = sorted(
            posixpath.basename(p) for p in fs.ls(folder, detail=False) if _ext(p) in FORMATS
        )
        if len(names) != 1:
            raise BookError(
                f"book {book_id!r}: {_join(url_folder, MANIFEST)} names no 'source' and its folder "
                f"holds {len(names)} manuscripts ({', '.join(names) or 'none'}); set 'source'"
            )
        source = _join(url_folder, names[0])
    return BookSource(book_id, source, _join(url_folder, MANIFEST))


def find_books(url: str, storage_options: dict[str, Any] | None = None) -> list[BookSource]:
    """Every book at ``url`` (file, folder with book.yaml, or folder of books), sorted by id."""
    fs, path = _fs(url, storage_options)
    url = url.rstrip("/")
    if not fs.exists(path):
        raise BookError(f"book or folder {url!r} does not exist")
    if not fs.isdir(path):
        folder, url_folder = posixpath.dirname(path), url.rsplit("/", 1)[0] if "/" in url else "."
        if posixpath.basename(path) == MANIFEST:
            return [_manifest_book(fs, folder, url_folder, slug(posixpath.basename(folder)))]
        if _ext(path) not in FORMATS:
            raise BookError(
                f"{url!r} is not a manuscript: use {', '.join(sorted(FORMATS))} or a book.yaml"
            )
        manifest = None
        if fs.exists(_join(folder, MANIFEST)):
            m = _read_manifest_at(fs, _join(folder, MANIFEST), _join(url_folder, MANIFEST))
            if m.source and posixpath.basename(m.source) == posixpath.basename(path):
                manifest = _join(url_folder, MANIFEST)
        stem = posixpath.splitext(posixpath.basename(path))[0]
        return [BookSource(slug(stem), url, manifest)]
    if fs.exists(_join(path, MANIFEST)):
        return [_manifest_book(fs, path, url, slug(posixpath.basename(path)))]
    books: dict[str, BookSource] = {}
    for entry in sorted(fs.ls(path, detail=True), key=lambda e: e["name"]):
        name = posixpath.basename(entry["name"].rstrip("/"))
        if entry["type"] == "directory" and fs.exists(_join(entry["name"], MANIFEST)):
            found = _manifest_book(fs, entry["name"], _join(url, name), slug(name))
        elif entry["type"] != "directory" and _ext(name) in FORMATS:
            found = BookSource(slug(posixpath.splitext(name)[0]), _join(url, name))
        else:
            continue
        if found.book_id in books:
            raise BookError(
                f"two books in {url!r} have the id {found.book_id!r} "
                f"({books[found.book_id].source}, {found.source}): rename one"
            )
        books[found.book_id] = found
    if not books:
        raise BookError(f"no books in {url!r} (manuscripts: {', '.join(sorted(FORMATS))})")
    return list(books.values())


def read_book(
    src: BookSource, storage_options: dict[str, Any] | None = None, default_language: str = "en"
) -> Book:
    """Read and parse one book; apply its manifest's overrides."""
    fs, path = _fs(src.source, storage_options)
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        raise BookError(f"book {src.book_id!r}: {src.source!r} does not exist") from None
    manifest = BookManifest()
    if src.manifest:
        mfs, mpath = _fs(src.manifest, storage_options)
        manifest = _read_manifest_at(mfs, mpath, src.manifest)
    fmt = FORMATS.get(_ext(path))
    if fmt is None:
        raise BookError(f"book {src.book_id!r}: {src.source!r} is not a known manuscript format")
    name = f"{src.book_id} ({posixpath.basename(path)})"
    found_title = author = language = None
    if fmt == "epub":
        meta, raw = read_epub(data, name)
        found_title, author, language = meta.title, meta.author, meta.language
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BookError(f"book {name!r} is not UTF-8 text: {exc}") from None
        stem = posixpath.splitext(posixpath.basename(path))[0]
        if fmt == "markdown":
            found_title, raw = read_markdown(text, stem)
        else:
            raw = read_text(text, stem)
        if not any(c.paragraphs for c in raw):
            raise BookError(f"book {name!r} has no text to narrate")
    title = manifest.title or found_title or src.book_id
    return Book(
        book_id=src.book_id,
        source=src.source,
        format=fmt,
        title=title,
        author=manifest.author or author,
        language=manifest.language or language or default_language,
        chapters=tuple(_apply_overrides(raw, manifest, name)),
        manifest=manifest,
        source_sha256=hashlib.sha256(data).hexdigest(),
    )


def _apply_overrides(raw: list[RawChapter], manifest: BookManifest, name: str) -> list[Chapter]:
    overrides = {o.number: o for o in manifest.chapters}
    unknown = sorted(set(overrides) - set(range(1, len(raw) + 1)))
    if unknown:
        raise ConfigError(
            f"book {name!r}: book.yaml overrides chapters {unknown}, but the book has "
            f"{len(raw)} chapters"
        )
    out = []
    for number, chapter in enumerate(raw, start=1):
        o = overrides.get(number)
        reason = None
        if o is not None and o.skip:
            reason = "skipped by book.yaml"
        elif not chapter.paragraphs:
            reason = f"no text ({chapter.note})" if chapter.note else "no text"
        out.append(
            Chapter(
                number=number,
                title=(o.title if o and o.title else chapter.title),
                paragraphs=chapter.paragraphs,
                voice=o.voice if o else None,
                skipped_reason=reason,
            )
        )
    return out
