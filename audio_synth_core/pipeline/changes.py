"""What changed since the previous complete run: items it produced ok are carried over (their
audio and measurements) instead of regenerated; ids it had that are no longer planned are "gone".
Arrow set lookups over columns, no per-item Python objects, so it holds at millions of items."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store

# Columns copied from the previous run for unchanged items, so they need no regeneration.
CARRIED = [
    "sample_rate_hz",
    "num_samples",
    "duration_s",
    "audio_uri",
    "audio_path",
    "sha256",
    "status",
    "error",
    "peak_dbfs",
    "rms_dbfs",
    "clipping_ratio",
    "silence_ratio",
    "integrated_lufs",
    "watermark_payload",
    "created_at",
    "provenance",
]
_GONE_SCHEMA = pa.schema([schema.ITEM_SCHEMA.field("id"), schema.ITEM_SCHEMA.field("catalog_id")])


def mark_changes(items: pa.Table, previous: pa.Table | None) -> tuple[pa.Table, pa.Table]:
    """Mark items the previous run produced ok as unchanged (carrying its measurements); return
    the previous ids that are no longer planned ("gone"). Arrow set lookups, no per-item objects."""
    if previous is None:
        return items, _GONE_SCHEMA.empty_table()
    # Ids of items the previous run did not produce ok are nulled out rather than filtered away,
    # so no copy of the previous table is made; index_in finds an id's first ok occurrence.
    ok = pc.equal(previous.column("status"), schema.STATUS_OK)
    ok_ids = pc.if_else(ok, previous.column("id"), pa.scalar(None, pa.string()))
    where = pc.index_in(items.column("id"), value_set=ok_ids)
    del ok_ids
    hit = pc.and_(pc.is_valid(where), pc.equal(items.column("status"), schema.STATUS_PENDING))
    hit = pc.fill_null(hit, False)
    gone = previous.filter(pc.invert(pc.is_in(previous.column("id"), value_set=items.column("id"))))
    gone = gone.select(["id", "catalog_id"]).cast(_GONE_SCHEMA)
    if pc.any(hit).as_py():
        taken = pc.if_else(hit, where, pa.scalar(None, where.type))
        for col in CARRIED:
            if col not in previous.column_names:
                continue
            target = schema.ITEM_SCHEMA.field(col).type
            carried = previous.column(col).cast(target).take(taken)
            # Each previous column is let go once carried: the peak is one copy, not two.
            previous = previous.drop_columns([col])
            i = items.schema.get_field_index(col)
            items = items.set_column(
                i, items.schema.field(i), pc.if_else(hit, carried, items.column(col))
            )
        i = items.schema.get_field_index("change")
        changed = pc.if_else(hit, schema.CHANGE_UNCHANGED, items.column("change"))
        items = items.set_column(i, items.schema.field(i), changed)
    return items, gone


def previous_items(store: Store, run_id: str) -> pa.Table | None:
    """The previous run's items, reading only the columns change marking needs (not the texts)."""
    folder = layout.items_dir(run_id)
    keep = ["id", "catalog_id", *CARRIED]
    tables = []
    for name in store.list(folder):
        if name.endswith(".parquet"):
            part = pq.ParquetFile(io.BytesIO(store.read_bytes(f"{folder}/{name}")))
            tables.append(part.read([c for c in keep if c in part.schema_arrow.names]))
    return pa.concat_tables(tables, promote_options="default") if tables else None


def changes_table(items: pa.Table, gone: pa.Table) -> pa.Table:
    """new / unchanged / gone per id versus the previous run."""
    current = items.select(["id", "catalog_id", "change"])
    gone = gone.append_column("change", pa.array([schema.CHANGE_GONE] * gone.num_rows, pa.string()))
    return pa.concat_tables([current, gone.cast(current.schema)])


def change_counts(changes: pa.Table) -> dict[str, int]:
    counts = {
        d["values"]: d["counts"] for d in pc.value_counts(changes.column("change")).to_pylist()
    }
    return {c: int(counts.get(c, 0)) for c in schema.CHANGES}
