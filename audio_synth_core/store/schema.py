"""The versioned Parquet schema of item metadata. Bump SCHEMA_VERSION on any incompatible change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

# 2: ``audio_path`` (audio relative to the output root) added; readers resolve it against the root
# they opened, so a copied, moved or downloaded output finds its own audio. Outputs of version 1
# (no such column) still read: their ``audio_uri`` is used as written.
SCHEMA_VERSION = "3"

STATUS_OK = "ok"
STATUS_FAILED = "failed"
# In a plan only: not generated yet (a committed metadata part holds ok or failed).
STATUS_PENDING = "pending"
STATUSES = (STATUS_OK, STATUS_FAILED)

# How an item relates to the previous complete run into the same output (scheduled re-runs).
CHANGE_NEW = "new"
CHANGE_UNCHANGED = "unchanged"
CHANGE_GONE = "gone"
CHANGES = (CHANGE_NEW, CHANGE_UNCHANGED, CHANGE_GONE)


def _f(name: str, typ: pa.DataType, unit: str = "", description: str = "", nullable: bool = True):
    meta = {"description": description}
    if unit:
        meta["unit"] = unit
    return pa.field(name, typ, nullable=nullable, metadata=meta)


ITEM_FIELDS: list[pa.Field] = [
    _f("id", pa.string(), description="content-derived item id", nullable=False),
    _f("catalog_id", pa.string(), description="id of the catalog row", nullable=False),
    _f("chunk_index", pa.int32(), description="position of this chunk in its catalog row"),
    _f("text", pa.string(), description="normalized text that was spoken"),
    _f("voice", pa.string(), description="generator voice name"),
    _f("language", pa.string(), description="language code"),
    _f("generator", pa.string(), description="generator plug-in name", nullable=False),
    _f("generator_version", pa.string(), description="engine or model version"),
    _f("generator_params", pa.string(), description="generator parameters as JSON"),
    _f("seed", pa.int64(), description="seed of stochastic generation"),
    _f("attributes", pa.string(), description="catalog and voice attributes as JSON"),
    _f("sample_rate_hz", pa.int32(), "Hz", "sample rate of the stored audio"),
    _f("num_samples", pa.int64(), "samples", "length of the stored audio"),
    _f("duration_s", pa.float64(), "s", "length of the stored audio"),
    _f("audio_uri", pa.string(), description="absolute URL of the audio when it was written"),
    _f(
        "audio_path",
        pa.string(),
        description="audio path relative to the output root (null: audio outside the output)",
    ),
    _f("audio_format", pa.string(), description="flac or wav"),
    _f("sha256", pa.string(), description="sha256 of the stored audio bytes"),
    _f("status", pa.string(), description="ok or failed", nullable=False),
    _f("error", pa.string(), description="why the item failed (null when ok)"),
    _f("peak_dbfs", pa.float64(), "dBFS", "sample peak"),
    _f("rms_dbfs", pa.float64(), "dBFS", "RMS level of the whole clip"),
    _f("clipping_ratio", pa.float64(), "ratio", "share of samples at full scale"),
    _f("silence_ratio", pa.float64(), "ratio", "share of 20 ms frames below -60 dBFS"),
    _f("integrated_lufs", pa.float64(), "LUFS", "BS.1770 integrated loudness"),
    _f("persona", pa.string(), description="voice persona as name@version (null: a plain voice)"),
    _f("watermark_payload", pa.int64(), description="payload of the watermark the audio carries"),
    _f("created_at", pa.string(), description="UTC time the audio was generated (ISO 8601)"),
    _f("provenance", pa.string(), description="provenance record of the audio as JSON"),
    _f("change", pa.string(), description="new or unchanged relative to the previous run"),
    _f("run_id", pa.string(), description="run that produced this row"),
]

ITEM_SCHEMA = pa.schema(
    ITEM_FIELDS,
    metadata={"audio_synth.schema": "items", "audio_synth.schema_version": SCHEMA_VERSION},
)


def item_arrays(
    columns: Mapping[str, Sequence[Any]], constant: Mapping[str, Any] | None = None
) -> list[pa.Array]:
    """Arrays of every item-schema field for planned rows: ``columns`` per item, ``constant`` the
    same for all of them, nulls for what generation fills in later."""
    n = len(columns["id"])
    constant = constant or {}
    arrays = []
    for f in ITEM_SCHEMA:
        if f.name in columns:
            arrays.append(pa.array(columns[f.name], f.type))
        elif f.name in constant:
            arrays.append(pa.array([constant[f.name]] * n, f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return arrays
