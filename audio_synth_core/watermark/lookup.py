"""A run's watermark lookup table: which item a decoded payload names.

Written with every marked run (``layout.watermarks``); detection reads it to map a payload back to
its item and run. Payloads are 32-bit digests of item ids, so two items may share one (about one
pair in a run of 90,000 items): a lookup returns every match.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audio_synth_core.store import schema

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
