"""Importing audio nobody here generated, so the validate flow can measure it.

Accepted inputs (any fsspec URL):
- an audio-synth output root (has LATEST.json): the items of its last complete run;
- a folder with an LJSpeech-style ``metadata.csv`` (``id|text|normalized text``, no header, audio in
  ``wavs/<id>.wav``);
- a folder with ``metadata.csv``/``metadata.parquet`` (or a table given by URL) holding a path column
  (path, file, audio, audio_path, filename) and optionally a text column (text, transcript,
  transcription, sentence, normalized_text); other columns become attributes;
- any folder of audio files (wav, flac, ogg, mp3), searched recursively, without texts.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from typing import Any

import pandas as pd
import pyarrow as pa

from audio_synth_core.errors import CatalogError
from audio_synth_core.pipeline import runs
from audio_synth_core.store import ids, layout, schema
from audio_synth_core.store.audio_files import is_per_file_error
from audio_synth_core.store.storage import Store

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
PATH_COLUMNS = ("path", "file", "audio", "audio_path", "filename", "file_name")
TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence", "normalized_text")


def _item(
    store: Store, rel: str, text: str | None, attributes: dict[str, Any], catalog_id: str
) -> dict:
    fmt = rel.rsplit(".", 1)[-1].lower()
    return {
        "id": ids.content_id(store.uri(rel)),
        "catalog_id": catalog_id,
        "chunk_index": 0,
        "text": text,
        "language": attributes.pop("language", None),
        "voice": attributes.pop("voice", None) or attributes.get("speaker"),
        "generator": "imported",
        "attributes": json.dumps(attributes, sort_keys=True, default=str),
        "audio_uri": store.uri(rel),
        "audio_format": fmt if fmt in ("flac", "wav") else None,
        "status": schema.STATUS_OK,
        "change": schema.CHANGE_NEW,
    }


def _read_metadata(store: Store, name: str) -> bytes:
    """The metadata table's bytes; one that cannot be read (a symlink loop, a directory, denied)
    is the whole input's problem, named, rather than an OSError traceback."""
    try:
        return store.read_bytes(name)
    except OSError as exc:
        if not is_per_file_error(exc):
            raise  # a connection or timeout error: worth trying again, not a bad input
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise CatalogError(f"cannot read metadata table {store.uri(name)!r}: {reason}") from None


def _ljspeech(store: Store) -> list[dict]:
    text = _read_metadata(store, "metadata.csv").decode("utf-8-sig")
    items = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        utt = fields[0].strip()
        spoken = (
            fields[2]
            if len(fields) > 2 and fields[2].strip()
            else (fields[1] if len(fields) > 1 else None)
        )
        items.append(_item(store, f"wavs/{utt}.wav", spoken, {}, utt))
    return items


def _table(store: Store, name: str) -> list[dict]:
    data = _read_metadata(store, name)
    df = (
        pd.read_parquet(io.BytesIO(data))
        if name.endswith(".parquet")
        else pd.read_csv(io.BytesIO(data))
    )
    path_col = next((c for c in PATH_COLUMNS if c in df.columns), None)
    if path_col is None:
        raise CatalogError(
            f"metadata table {store.uri(name)!r} has no path column (one of {', '.join(PATH_COLUMNS)})"
        )
    text_col = next((c for c in TEXT_COLUMNS if c in df.columns), None)
    base = posixpath.dirname(name)
    items = []
    for rec in df.to_dict("records"):
        rel = posixpath.normpath(posixpath.join(base, str(rec.pop(path_col))))
        text = rec.pop(text_col, None) if text_col else None
        attrs = {k: v for k, v in rec.items() if pd.notna(v)}
        items.append(
            _item(
                store,
                rel,
                None if pd.isna(text) else str(text),
                attrs,
                posixpath.splitext(posixpath.basename(rel))[0],
            )
        )
    return items


def _utf8(path: str) -> str:
    """``path`` as valid UTF-8 text: a local name in another encoding (the OS hands it over with
    surrogate escapes, which no Parquet string or id hash accepts) gets U+FFFD in place of its bad
    bytes, so it is an item whose read fails and names it, not a crash of the whole discovery."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return path


def _walk(store: Store) -> list[dict]:
    """Every entry named like audio under the root, whatever it is.

    fsspec's walk lists symlinks without following them into directories (so a link loop such as
    ``up -> ..`` cannot make it hang) and skips folders it cannot list. A link (dangling or
    looping), a FIFO or even a directory named ``x.wav`` is kept as an item: validation records
    why it cannot be read, instead of the file silently vanishing from the report.
    """
    root = store.path("").rstrip("/")
    entries = (_utf8(p.rstrip("/")) for p in store.fs.find(root, withdirs=True))
    found = sorted({p for p in entries if p != root and p.lower().endswith(AUDIO_EXTENSIONS)})
    items = []
    for path in found:
        rel = path[len(root) + 1 :]
        parent = posixpath.dirname(rel)
        attrs = {"speaker": parent.split("/")[0]} if parent else {}
        items.append(_item(store, rel, None, attrs, posixpath.splitext(rel)[0]))
    return items


def discover(input_url: str, storage_options: dict[str, Any] | None = None) -> pa.Table:
    """Items (item schema) for every audio file of the input; raises CatalogError when none."""
    store = Store(input_url, storage_options)
    if not store.fs.exists(store.path("")):
        raise CatalogError(f"input {input_url!r} does not exist")
    if store.exists(layout.LATEST):
        # Its audio stays outside the validate output: absolute URLs resolved against where the
        # input is now (read_items), and no path relative to the output (none before schema 2).
        df = runs.read_items(store).reindex(columns=schema.ITEM_SCHEMA.names)
        df["audio_path"] = None
        return pa.Table.from_pandas(df, schema=schema.ITEM_SCHEMA, preserve_index=False)
    names = set(store.list(""))
    if "metadata.csv" in names and "wavs" in names and _is_ljspeech(store):
        items = _ljspeech(store)
    elif "metadata.parquet" in names:
        items = _table(store, "metadata.parquet")
    elif "metadata.csv" in names:
        items = _table(store, "metadata.csv")
    else:
        items = _walk(store)
    if not items:
        raise CatalogError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {input_url!r}")
    return pa.Table.from_pylist(items, schema=schema.ITEM_SCHEMA)


def _is_ljspeech(store: Store) -> bool:
    head = _read_metadata(store, "metadata.csv")[:4096].decode("utf-8-sig", errors="replace")
    first = next(csv.reader(io.StringIO(head), delimiter="|"), [])
    return len(first) >= 2 and not any(c.strip().lower() in PATH_COLUMNS for c in first)
