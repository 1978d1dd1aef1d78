"""Run-level figures computed part by part: the driver never loads a whole run's items for them."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store

LEVEL_COLUMNS = (
    "duration_s",
    "peak_dbfs",
    "rms_dbfs",
    "clipping_ratio",
    "silence_ratio",
    "integrated_lufs",
)
_READ = ("status", "change", *LEVEL_COLUMNS)


def item_totals(store: Store, run_id: str) -> dict[str, Any]:
    """Counts (total, ok, failed, unchanged), audio hours and the mean of each level column over
    ok items, reading only those columns, one metadata part at a time."""
    totals = {"items_total": 0, "items_ok": 0, "items_failed": 0, "items_unchanged": 0}
    sums = dict.fromkeys(LEVEL_COLUMNS, 0.0)
    counts = dict.fromkeys(LEVEL_COLUMNS, 0)
    for _, table in column_parts(store, layout.items_dir(run_id), _READ):
        ok_mask = pc.equal(table.column("status"), schema.STATUS_OK)
        ok = table.filter(ok_mask)
        totals["items_total"] += table.num_rows
        totals["items_ok"] += ok.num_rows
        totals["items_failed"] += (
            pc.sum(pc.equal(table.column("status"), schema.STATUS_FAILED)).as_py() or 0
        )
        if "change" in ok.column_names:
            totals["items_unchanged"] += (
                pc.sum(pc.equal(ok.column("change"), schema.CHANGE_UNCHANGED)).as_py() or 0
            )
        for col in LEVEL_COLUMNS:
            if col in ok.column_names:
                values = ok.column(col).drop_null()
                sums[col] += pc.sum(values).as_py() or 0.0
                counts[col] += len(values)
    out: dict[str, Any] = dict(totals)
    out["audio_hours"] = sums["duration_s"] / 3600
    for col in LEVEL_COLUMNS:
        out[f"{col}_mean"] = sums[col] / counts[col] if counts[col] else None
    return out


def column_parts(
    store: Store, folder: str, columns: Iterable[str], names: Iterable[str] | None = None
) -> Iterator[tuple[str, pa.Table]]:
    """(part name, only ``columns`` of it) for each Parquet part under ``folder`` (or only the
    parts ``names``), one part at a time: a caller that filters as it goes holds one part."""
    wanted = list(columns)
    listed = sorted(store.list(folder)) if names is None else sorted(names)
    for name in listed:
        if name.endswith(".parquet"):
            part = pq.ParquetFile(io.BytesIO(store.read_bytes(f"{folder}/{name}")))
            yield name, part.read([c for c in wanted if c in part.schema_arrow.names])


def read_columns(
    store: Store, run_id: str, columns: list[str], folder: str | None = None
) -> pd.DataFrame:
    """Only ``columns`` of a run's item parts (or of the parts under ``folder``), one part at a
    time: what run-level steps need (ids, payloads, status) without the texts and measurements."""
    tables = [t for _, t in column_parts(store, folder or layout.items_dir(run_id), columns)]
    if not tables:
        return pd.DataFrame(columns=columns)
    return pa.concat_tables(tables, promote_options="default").to_pandas()
