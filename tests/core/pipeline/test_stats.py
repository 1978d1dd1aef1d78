"""Run totals computed part by part equal the same figures computed over the whole table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audio_synth_core.pipeline.stats import LEVEL_COLUMNS, item_totals
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store


def _rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        failed = i % 5 == 0
        row = {
            "id": f"{seed}-{i}",
            "catalog_id": f"c{i}",
            "generator": "espeak",
            "status": schema.STATUS_FAILED if failed else schema.STATUS_OK,
            "change": schema.CHANGE_UNCHANGED if i % 3 == 0 else schema.CHANGE_NEW,
        }
        if not failed:
            row |= {c: float(rng.normal(-20, 5)) for c in LEVEL_COLUMNS}
            row["duration_s"] = float(rng.uniform(1, 10))
            row["integrated_lufs"] = None if i % 7 == 0 else row["integrated_lufs"]
        rows.append(row)
    return rows


def test_totals_match_whole_table(tmp_path):
    store = Store(str(tmp_path))
    parts = [_rows(40, 1), _rows(25, 2)]
    for k, rows in enumerate(parts):
        store.write_table(
            layout.items_part("r1", f"shard-{k:05d}"),
            pa.Table.from_pylist(rows, schema=schema.ITEM_SCHEMA),
        )
    df = pa.Table.from_pylist(parts[0] + parts[1], schema=schema.ITEM_SCHEMA).to_pandas()
    ok = df[df["status"] == schema.STATUS_OK]
    got = item_totals(store, "r1")
    assert got["items_total"] == 65
    assert got["items_ok"] == len(ok)
    assert got["items_failed"] == 65 - len(ok)
    assert got["items_unchanged"] == int((ok["change"] == schema.CHANGE_UNCHANGED).sum())
    assert abs(got["audio_hours"] - ok["duration_s"].sum() / 3600) < 1e-12
    for col in LEVEL_COLUMNS:
        assert abs(got[f"{col}_mean"] - ok[col].dropna().mean()) < 1e-9
