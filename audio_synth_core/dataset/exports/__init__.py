"""Dataset exports that training tools load without conversion code: Hugging Face ``datasets``
(Parquet with embedded audio), Lhotse manifests, WebDataset tar shards and NeMo manifests.

One writer per format (``hf.py``, ``lhotse_export.py``, ``wds.py``, ``nemo.py``), composed by
``export_all``, which walks the items once: split by split (sorted by id), shard by shard, reading
each item's audio once and handing it to every writer. Memory is bounded by one small batch of
audio in flight plus one Parquet row group; shards and manifests stream to staged files that
appear under their final names only when complete (``files.StagedFile``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from audio_synth_core.dataset.exports.files import AudioInfo, ExportWriter, audio_info
from audio_synth_core.dataset.exports.hf import HFWriter
from audio_synth_core.dataset.exports.lhotse_export import LhotseWriter
from audio_synth_core.dataset.exports.nemo import NemoWriter
from audio_synth_core.dataset.exports.wds import WebDatasetWriter
from audio_synth_core.errors import ConfigError
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

EXPORT_FORMATS = ("hf", "lhotse", "webdataset", "nemo")
WRITERS: dict[str, type[ExportWriter]] = {
    "hf": HFWriter,
    "lhotse": LhotseWriter,
    "webdataset": WebDatasetWriter,
    "nemo": NemoWriter,
}
REQUIRED_COLUMNS = ("id", "split", "text", "audio_path")
OPTIONAL_COLUMNS = (
    "speaker_id",
    "language",
    "gender",
    "age_band",
    "accent",
    "duration_s",
    "sample_rate_hz",
    "audio_format",
    "clean_id",
    "augmentation",
    "source_id",
)
# Conventional splits first, any others after them in name order.
SPLIT_ORDER = ("train", "dev", "validation", "test")
# Audio files read concurrently (object stores answer each GET in tens of milliseconds).
READ_AHEAD = 16


def export_all(
    store: Store,
    items: pa.Table | Any,
    formats: Sequence[str],
    out_dir_rel: str,
    name: str = "dataset",
    shard_items: int = 1000,
) -> dict[str, dict]:
    """Write ``items`` (kept items only; columns in ``REQUIRED_COLUMNS`` + ``OPTIONAL_COLUMNS``,
    ``audio_path`` relative to the store root) in each of ``formats`` under ``out_dir_rel``.

    Returns, per format, ``{"path": rel, "files": [rel, ...], "counts": {split: n}}``. Raises
    ConfigError for an unknown format, missing columns, duplicate ids or no items; an audio file
    that cannot be read stops the export with its path named, and leaves no partial file.
    """
    table = _as_table(items)
    chosen = _check(table, formats, shard_items, name)
    writers = [WRITERS[fmt](store, out_dir_rel, name) for fmt in chosen]
    needs_bytes = any(w.needs_bytes for w in writers)
    try:
        for split in _splits(table):
            rows = table.filter(pc.equal(table["split"], split)).sort_by("id")
            n_shards = max(1, -(-rows.num_rows // shard_items))
            for w in writers:
                w.begin_split(split, n_shards)
            for index in range(n_shards):
                shard = rows.slice(index * shard_items, shard_items)
                for w in writers:
                    w.begin_shard(split, index, n_shards)
                for row, audio, info in _read_shard(store, shard, needs_bytes):
                    for w in writers:
                        w.add(split, row, audio, info)
                for w in writers:
                    w.end_shard(split)
            for w in writers:
                w.end_split(split)
        for w in writers:
            w.finish()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    return {w.fmt: w.result(layout.export_dir(out_dir_rel, w.fmt)) for w in writers}


def _as_table(items: Any) -> pa.Table:
    if isinstance(items, pa.Table):
        return items
    try:  # a pandas DataFrame (or anything pyarrow converts)
        return pa.Table.from_pandas(items, preserve_index=False)
    except Exception as exc:
        raise ConfigError(
            f"export items must be a pyarrow Table or pandas DataFrame: {exc}"
        ) from None


def _check(table: pa.Table, formats: Sequence[str], shard_items: int, name: str) -> list[str]:
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise ConfigError(f"unknown export format(s) {unknown}; known: {', '.join(EXPORT_FORMATS)}")
    if not formats:
        raise ConfigError(f"no export format chosen; known: {', '.join(EXPORT_FORMATS)}")
    if shard_items < 1:
        raise ConfigError(f"shard_items must be at least 1, got {shard_items}")
    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise ConfigError(f"export name {name!r} must be a plain file-name prefix")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise ConfigError(f"export items lack column(s) {missing}")
    if table.num_rows == 0:
        raise ConfigError("no items to export (every item was dropped?)")
    for column in ("id", "split", "audio_path"):
        if table[column].null_count:
            raise ConfigError(f"export items have {table[column].null_count} null {column!r}")
    if pc.count_distinct(table["id"]).as_py() != table.num_rows:
        raise ConfigError("export items have duplicate ids")
    bad = [s for s in pc.unique(table["split"]).to_pylist() if not _plain(s)]
    if bad:
        raise ConfigError(f"split names must be letters, digits or '_': {bad}")
    return list(dict.fromkeys(formats))


def _plain(split: str) -> bool:
    return bool(split) and split.replace("_", "").isalnum()


def _splits(table: pa.Table) -> list[str]:
    present = set(pc.unique(table["split"]).to_pylist())
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def _read_shard(
    store: Store, shard: pa.Table, needs_bytes: bool
) -> Iterator[tuple[dict[str, Any], bytes | None, AudioInfo]]:
    """Each row with its audio bytes (or None) and header facts, READ_AHEAD files at a time."""

    def load(row: dict[str, Any]) -> tuple[bytes | None, AudioInfo]:
        rel = row["audio_path"]
        if needs_bytes:
            data = store.read_bytes(rel)
            return data, audio_info(data, store.uri(rel))
        with store.fs.open(store.path(rel), "rb") as fh:  # the header only
            head = fh.read(1 << 16)
        return None, audio_info(head, store.uri(rel)) if _complete_header(head) else _full(rel)

    def _full(rel: str) -> AudioInfo:
        return audio_info(store.read_bytes(rel), store.uri(rel))

    columns = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in shard.column_names]
    with ThreadPoolExecutor(max_workers=READ_AHEAD) as pool:
        for start in range(0, shard.num_rows, READ_AHEAD):
            rows = shard.slice(start, READ_AHEAD).select(columns).to_pylist()
            for row, (data, info) in zip(rows, pool.map(load, rows), strict=True):
                yield row, data, info


def _complete_header(head: bytes) -> bool:
    """A FLAC's STREAMINFO (with its total sample count) is in its first 42 bytes, so its first
    64 KiB tell its length; other formats (a WAV's length can disagree with its header) are
    read whole."""
    return head[:4] == b"fLaC"
