"""A run's watermark lookup table: which item a decoded payload names.

Written with every marked run (``layout.watermarks``); detection reads it to map a payload back to
its item and run. Payloads are 32-bit digests of item ids, so two items may share one (about one
pair in a run of 90,000 items): a lookup returns every match.

A clip too short to carry the whole coded payload decodes with no certain payload; the table
settles it when, of the run's payloads, exactly one is within TOLERANCE of the evidence
(measured on ~2 s clips over 500 keys: the true payload at most 0.91 received bits behind the
best, the nearest of 20,000 unrelated payloads at least 4.8 behind).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audio_synth_core.store import schema
from audio_synth_core.watermark import payload as codec
from audio_synth_core.watermark.scheme import Detection

TOLERANCE = 2.0  # received bits a table payload may fall behind the best and still match

# The item columns lookup_table reads (a run can read just these, part by part).
ITEM_COLUMNS = ("id", "status", "watermark_payload", "catalog_id", "audio_path")
LOOKUP_SCHEMA = pa.schema(
    [
        pa.field("watermark_payload", pa.int64()),
        pa.field("id", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("catalog_id", pa.string()),
        pa.field("audio_path", pa.string()),
        pa.field("key_fingerprint", pa.string()),
        pa.field("scheme", pa.string()),
    ]
)


def lookup_table(items: pd.DataFrame, run_id: str, fingerprint: str, scheme: str) -> pa.Table:
    """Payload -> item rows for every marked, generated item of ``items`` (a run's item table)."""
    ok = items[(items["status"] == schema.STATUS_OK) & items["watermark_payload"].notna()]
    return pa.table(
        {
            "watermark_payload": ok["watermark_payload"].astype("int64").to_numpy(),
            "id": ok["id"].astype(str).to_numpy(),
            "run_id": [run_id] * len(ok),
            "catalog_id": [None if pd.isna(v) else str(v) for v in ok["catalog_id"]]
            if "catalog_id" in ok.columns
            else [None] * len(ok),
            "audio_path": ok["audio_path"].astype(str).to_numpy(),
            "key_fingerprint": [fingerprint] * len(ok),
            "scheme": [scheme] * len(ok),
        },
        schema=LOOKUP_SCHEMA,
    )


def find(table: pa.Table, payload: int) -> list[dict[str, Any]]:
    """Rows of ``table`` whose payload is ``payload`` (usually one; none for another run)."""
    hit = pc.equal(table.column("watermark_payload"), pa.scalar(int(payload), pa.int64()))
    return table.filter(hit).to_pylist()


def resolve(table: pa.Table | None, found: Detection) -> tuple[int | None, list[dict[str, Any]]]:
    """The payload a detection names and the rows of ``table`` it matches: a certain payload's
    rows, else those of every payload of the table within TOLERANCE of the best (the payload
    only when that is one)."""
    if not found.detected or table is None or table.num_rows == 0:
        return found.payload, []
    if found.payload is not None:
        return found.payload, find(table, found.payload)
    if found.soft_bits is None:
        return None, []
    payloads = pc.unique(table.column("watermark_payload")).drop_null().to_numpy()
    near = payloads[codec.deficits(found.soft_bits, payloads) < TOLERANCE]
    hit = pc.is_in(table.column("watermark_payload"), pa.array(near, pa.int64()))
    return (int(near[0]) if len(near) == 1 else None), table.filter(hit).to_pylist()
