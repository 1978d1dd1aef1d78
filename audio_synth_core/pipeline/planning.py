"""Planning a catalog run: catalog rows -> items with content-derived ids -> shards, with changes
marked against the previous complete run.

The plan is deterministic: the same config and catalog give the same ids, seeds and shards, so the
run id (a hash of the plan) names the same run on every attempt, and finished shards are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from audio_synth_core.config.models import RunConfig
from audio_synth_core.errors import UnknownVoiceError
from audio_synth_core.generators.base import Generator
from audio_synth_core.inputs import text
from audio_synth_core.inputs.catalog import CatalogRow, read_catalog
from audio_synth_core.pipeline.runs import ShardSpec, latest_run_id, make_shards
from audio_synth_core.store import ids, layout, schema
from audio_synth_core.store.storage import Store

STATUS_PENDING = "pending"


@dataclass(frozen=True)
class Plan:
    run_id: str
    items: pa.Table
    shards: list[ShardSpec]
    previous_run_id: str | None
    gone: pa.Table


def item_seed(base_seed: int, catalog_id: str, chunk_index: int) -> int:
    return ids.seed_of(base_seed, catalog_id, chunk_index)


def choose_voice(row: CatalogRow, cfg: RunConfig, generator: Generator) -> tuple[str, str]:
    """(voice, language) for a row: its own voice, else its language's voice, else the default."""
    if row.voice:
        info = generator.resolve_voice(row.voice, None)
    elif row.language:
        mapped = cfg.voices.by_language.get(row.language)
        info = (
            generator.resolve_voice(mapped, None)
            if mapped
            else generator.resolve_voice(None, row.language)
        )
    else:
        info = generator.resolve_voice(cfg.voices.default, None)
    return info.name, row.language or info.language


def _base_row(row: CatalogRow, gen: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    return {
        "catalog_id": row.catalog_id,
        "generator": gen["name"],
        "generator_version": gen["version"],
        "generator_params": json.dumps(gen["params"], sort_keys=True),
        "audio_format": cfg.output.audio_format,
        "status": STATUS_PENDING,
        "error": None,
        "change": schema.CHANGE_NEW,
    }


def expand_rows(rows: Iterable[CatalogRow], cfg: RunConfig, generator: Generator) -> list[dict]:
    """One item per text chunk; rows that cannot be spoken become one failed item with a reason."""
    gen = generator.describe()
    voice_attrs = {v.name: v for v in generator.voices()}
    items: list[dict[str, Any]] = []
    for row in rows:
        base = _base_row(row, gen, cfg)
        error = row.error
        voice = language = None
        if error is None:
            try:
                voice, language = choose_voice(row, cfg, generator)
            except UnknownVoiceError as exc:
                error = str(exc)
        chunks: list[str] = []
        if error is None:
            chunks = text.chunk(row.text, language or "en", max_chars=cfg.text.max_chunk_chars)
            if not chunks:
                error = "empty text"
            elif len(chunks) > cfg.text.max_chunks_per_row:
                error = (
                    f"text splits into {len(chunks)} chunks, more than "
                    f"text.max_chunks_per_row={cfg.text.max_chunks_per_row}"
                )
        attrs = dict(row.attributes)
        info = voice_attrs.get((voice or "").split("+")[0])
        if info is not None:
            for key in ("gender", "age_band", "accent"):
                value = getattr(info, key)
                if value and key not in attrs:
                    attrs[key] = value
        attributes = json.dumps(attrs, sort_keys=True, default=str)
        if error is not None:
            item_id = ids.content_id("failed", row.catalog_id, row.row_number, error)
            items.append(
                {
                    **base,
                    "id": item_id,
                    "chunk_index": 0,
                    "text": row.text[:1000],
                    "voice": row.voice,
                    "language": row.language,
                    "seed": 0,
                    "attributes": attributes,
                    "status": schema.STATUS_FAILED,
                    "error": error,
                }
            )
            continue
        for index, chunk_text in enumerate(chunks):
            seed = item_seed(cfg.voices.seed, row.catalog_id, index)
            item_id = ids.content_id(
                row.catalog_id,
                index,
                chunk_text,
                voice,
                language,
                gen["name"],
                gen["version"],
                base["generator_params"],
                seed,
                cfg.output.audio_format,
            )
            items.append(
                {
                    **base,
                    "id": item_id,
                    "chunk_index": index,
                    "text": chunk_text,
                    "voice": voice,
                    "language": language,
                    "seed": seed,
                    "attributes": attributes,
                }
            )
    return items


def plan_table(items: list[dict[str, Any]]) -> pa.Table:
    """Items as a table in the item schema; measurement columns stay null until generated."""
    names = schema.ITEM_SCHEMA.names
    return pa.Table.from_pylist(
        [{c: it.get(c) for c in names} for it in items], schema=schema.ITEM_SCHEMA
    )


def run_id_for(items: pa.Table, cfg: RunConfig) -> str:
    digest = ids.stream_digest(
        items.column("id").to_pylist(), cfg.sharding.items_per_shard, schema.SCHEMA_VERSION
    )
    return ids.run_id(cfg.name, digest)


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
]


def mark_changes(items: pa.Table, previous: pa.Table | None) -> tuple[pa.Table, pa.Table]:
    """Mark items the previous run produced ok as unchanged (carrying its measurements); return
    the previous ids that are no longer planned ("gone")."""
    gone_schema = pa.schema(
        [schema.ITEM_SCHEMA.field("id"), schema.ITEM_SCHEMA.field("catalog_id")]
    )
    if previous is None:
        return items, gone_schema.empty_table()
    prev = previous.to_pandas()
    ok_prev = prev[prev["status"] == schema.STATUS_OK].drop_duplicates("id").set_index("id")
    df = items.to_pandas()
    hit = df["id"].isin(ok_prev.index) & (df["status"] == STATUS_PENDING)
    if hit.any():
        carried = ok_prev.loc[df.loc[hit, "id"], [c for c in CARRIED if c in ok_prev.columns]]
        for col in carried.columns:
            df[col] = df[col].astype(object)
            df.loc[hit, col] = carried[col].to_numpy()
        df.loc[hit, "change"] = schema.CHANGE_UNCHANGED
    gone = prev.loc[~prev["id"].isin(set(df["id"])), ["id", "catalog_id"]]
    return (
        pa.Table.from_pandas(df, schema=schema.ITEM_SCHEMA, preserve_index=False),
        pa.Table.from_pandas(gone, schema=gone_schema, preserve_index=False),
    )


def build_plan(cfg: RunConfig, generator: Generator, store: Store) -> Plan:
    """Deterministic plan of the run, with changes marked against the last complete catalog run."""
    items = plan_table(expand_rows(read_catalog(cfg.catalog), cfg, generator))
    run_id = run_id_for(items, cfg)
    previous_id = latest_run_id(store, "catalog")
    previous = None
    if previous_id and previous_id != run_id:
        previous = store.read_tables(layout.items_dir(previous_id))
    items, gone = mark_changes(items, previous)
    shards = make_shards(run_id, items.num_rows, cfg.sharding.items_per_shard)
    return Plan(run_id, items, shards, previous_id if previous is not None else None, gone)


def changes_table(plan: Plan) -> pa.Table:
    """new / unchanged / gone per id versus the previous run."""
    current = plan.items.select(["id", "catalog_id", "change"])
    gone = plan.gone.append_column(
        "change", pa.array([schema.CHANGE_GONE] * plan.gone.num_rows, pa.string())
    )
    return pa.concat_tables([current, gone.cast(current.schema)])


def change_counts(changes: pa.Table) -> dict[str, int]:
    counts = pd.Series(changes.column("change").to_pylist()).value_counts().to_dict()
    return {c: int(counts.get(c, 0)) for c in schema.CHANGES}
