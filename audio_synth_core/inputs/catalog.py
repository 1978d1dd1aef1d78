"""Reading input catalogs (CSV, JSONL, Parquet) as a stream of row batches, keeping broken rows as
recorded errors.

Nothing here holds the whole catalog: text formats are read line by line from the open stream,
Parquet in Arrow record batches, and rows come out in lists of ``batch_rows``. The one structure
that grows with the catalog is the id -> first row map that finds duplicate ids.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import fsspec
import pyarrow.parquet as pq

from audio_synth_core.config.models import CatalogConfig
from audio_synth_core.errors import CatalogError

BATCH_ROWS = 20_000


@dataclass(frozen=True)
class CatalogRow:
    """One catalog entry. ``error`` is set when the row itself is broken (it becomes a failed item)."""

    row_number: int
    catalog_id: str
    text: str
    voice: str | None = None
    language: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # A voice persona (name@N, name@latest) the row is spoken with instead of a voice.
    persona: str | None = None


Record = tuple[int, dict[str, Any] | None, str | None]


def _detect_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    lower = path.lower().removesuffix(".gz")
    for suffix, name in (
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".parquet", "parquet"),
    ):
        if lower.endswith(suffix):
            return name
    raise CatalogError(f"cannot tell the format of catalog {path!r}: set catalog.format")


def _parquet_records(fh: IO[bytes], path: str, batch_rows: int) -> Iterator[Record]:
    try:
        batches = pq.ParquetFile(fh).iter_batches(batch_size=batch_rows)
        number = 0
        for batch in batches:
            for rec in batch.to_pylist():
                number += 1
                yield number, rec, None
    except CatalogError:
        raise
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise CatalogError(f"catalog {path!r} is not a readable Parquet file: {exc}") from None


def _jsonl_records(text: IO[str]) -> Iterator[Record]:
    for i, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            yield i, None, f"line {i}: invalid JSON ({exc.msg})"
            continue
        if not isinstance(rec, dict):
            yield i, None, f"line {i}: expected a JSON object, got {type(rec).__name__}"
            continue
        yield i, rec, None


def _csv_records(text: IO[str], path: str) -> Iterator[Record]:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise CatalogError(f"catalog {path!r} is empty") from None
    for values in reader:
        i = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield i, None, f"line {i}: expected {len(header)} fields, found {len(values)}"
            continue
        yield i, dict(zip(header, values, strict=True)), None


def _raw_records(cfg: CatalogConfig, batch_rows: int = BATCH_ROWS) -> Iterator[Record]:
    """(row number, record or None, parse error or None) for every row, 1-based like editors,
    streamed from the open file."""
    fmt = _detect_format(cfg.path, cfg.format)
    try:
        opened = fsspec.open(cfg.path, "rb", compression="infer")
        fh = opened.__enter__()
    except FileNotFoundError:
        raise CatalogError(f"catalog {cfg.path!r} does not exist") from None
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {cfg.path!r}: {exc}") from None
    try:
        if fmt == "parquet":
            yield from _parquet_records(fh, cfg.path, batch_rows)
            return
        # newline="" keeps quoted newlines inside CSV fields; JSONL uses universal newlines.
        newline = "" if fmt == "csv" else None
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline=newline)
        try:
            if fmt == "jsonl":
                yield from _jsonl_records(text)
            else:
                yield from _csv_records(text, cfg.path)
        except UnicodeDecodeError as exc:
            raise CatalogError(f"catalog {cfg.path!r} is not UTF-8 text: {exc}") from None
        finally:
            text.detach()
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {cfg.path!r}: {exc}") from None
    finally:
        opened.__exit__(None, None, None)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def iter_catalog(cfg: CatalogConfig, batch_rows: int = BATCH_ROWS) -> Iterator[list[CatalogRow]]:
    """The catalog's rows in lists of at most ``batch_rows``; broken rows carry an ``error``.

    Raises CatalogError only when the catalog as a whole is unusable (missing, unreadable, or no
    id/text column), because then no item could be produced anyway.
    """
    batch: list[CatalogRow] = []
    any_rows = False
    seen: dict[str, int] = {}
    columns_checked = False
    reserved = {cfg.id_column, cfg.text_column, cfg.voice_column, cfg.language_column}
    reserved.add(cfg.persona_column)
    for number, rec, problem in _raw_records(cfg, batch_rows):
        if rec is not None and not columns_checked:
            missing = [c for c in (cfg.id_column, cfg.text_column) if c not in rec]
            if missing:
                raise CatalogError(
                    f"catalog {cfg.path!r} has no column {missing[0]!r} "
                    f"(columns: {', '.join(map(str, rec))}); set catalog.id_column/text_column"
                )
            columns_checked = True
        any_rows = True
        if rec is None:
            batch.append(CatalogRow(number, f"row-{number}", "", error=problem))
        else:
            batch.append(_row(cfg, number, rec, seen, reserved))
        if len(batch) >= batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch
    if not any_rows:
        raise CatalogError(f"catalog {cfg.path!r} has no rows")


def _row(
    cfg: CatalogConfig, number: int, rec: dict[str, Any], seen: dict[str, int], reserved: set
) -> CatalogRow:
    cid = _clean(rec.get(cfg.id_column))
    raw_text = rec.get(cfg.text_column)
    text = "" if raw_text is None else str(raw_text)
    attributes = {k: v for k, v in rec.items() if k not in reserved and v not in (None, "")}
    error = None
    if cid is None:
        cid, error = f"row-{number}", f"row {number}: missing {cfg.id_column!r}"
    elif cid in seen:
        error = f"duplicate id {cid!r} (first at row {seen[cid]})"
        cid = f"{cid}#row-{number}"
    else:
        seen[cid] = number
    if error is None and not text.strip():
        error = "empty text"
    elif error is None and len(text) > cfg.max_text_chars:
        error = f"text has {len(text)} characters, more than catalog.max_text_chars={cfg.max_text_chars}"
    return CatalogRow(
        row_number=number,
        catalog_id=cid,
        text=text,
        voice=_clean(rec.get(cfg.voice_column)),
        language=_clean(rec.get(cfg.language_column)),
        attributes=attributes,
        error=error,
        persona=_clean(rec.get(cfg.persona_column)),
    )


def read_catalog(cfg: CatalogConfig) -> list[CatalogRow]:
    """All rows of a (small) catalog as one list; large catalogs are read with ``iter_catalog``."""
    return [row for batch in iter_catalog(cfg) for row in batch]
