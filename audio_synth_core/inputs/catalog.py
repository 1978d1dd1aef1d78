"""Reading input catalogs (CSV, JSONL, Parquet) into rows, keeping broken rows as recorded errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow.parquet as pq

from audio_synth_core.config.models import CatalogConfig
from audio_synth_core.errors import CatalogError


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


def _raw_records(cfg: CatalogConfig) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(row number, record or None, parse error or None) for every row, 1-based like editors."""
    fmt = _detect_format(cfg.path, cfg.format)
    try:
        opened = fsspec.open(cfg.path, "rb", compression="infer")
        with opened as fh:
            data = fh.read()
    except FileNotFoundError:
        raise CatalogError(f"catalog {cfg.path!r} does not exist") from None
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {cfg.path!r}: {exc}") from None
    if fmt == "parquet":
        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise CatalogError(
                f"catalog {cfg.path!r} is not a readable Parquet file: {exc}"
            ) from None
        for i, rec in enumerate(table.to_pylist(), start=1):
            yield i, rec, None
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"catalog {cfg.path!r} is not UTF-8 text: {exc}") from None
    if fmt == "jsonl":
        for i, line in enumerate(text.splitlines(), start=1):
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
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CatalogError(f"catalog {cfg.path!r} is empty") from None
    for values in reader:
        i = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield i, None, f"line {i}: expected {len(header)} fields, found {len(values)}"
            continue
        yield i, dict(zip(header, values, strict=True)), None


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def read_catalog(cfg: CatalogConfig) -> list[CatalogRow]:
    """All rows of the catalog; broken rows carry an ``error`` instead of raising.

    Raises CatalogError only when the catalog as a whole is unusable (missing, unreadable, or no
    id/text column), because then no item could be produced anyway.
    """
    rows: list[CatalogRow] = []
    seen: dict[str, int] = {}
    columns_checked = False
    reserved = {cfg.id_column, cfg.text_column, cfg.voice_column, cfg.language_column}
    for number, rec, problem in _raw_records(cfg):
        if rec is not None and not columns_checked:
            missing = [c for c in (cfg.id_column, cfg.text_column) if c not in rec]
            if missing:
                raise CatalogError(
                    f"catalog {cfg.path!r} has no column {missing[0]!r} "
                    f"(columns: {', '.join(map(str, rec))}); set catalog.id_column/text_column"
                )
            columns_checked = True
        if rec is None:
            rows.append(CatalogRow(number, f"row-{number}", "", error=problem))
            continue
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
        rows.append(
            CatalogRow(
                row_number=number,
                catalog_id=cid,
                text=text,
                voice=_clean(rec.get(cfg.voice_column)),
                language=_clean(rec.get(cfg.language_column)),
                attributes=attributes,
                error=error,
            )
        )
    if not rows:
        raise CatalogError(f"catalog {cfg.path!r} has no rows")
    return rows
