"""Run bookkeeping: plan a run against what the output already holds, and commit it.

Outputs are the source of truth: a shard is done when its items part exists, a run is done when its
manifest exists, and the last complete run is named by LATEST.json.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pyarrow as pa

from audio_synth_core.config.models import RunConfig
from audio_synth_core.generators.base import Generator
from audio_synth_core.inputs.catalog import read_catalog
from audio_synth_core.pipeline.planning import (
    Plan,
    ShardSpec,
    expand_rows,
    make_shards,
    mark_changes,
    plan_table,
    run_id_for,
)
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store


def latest_run_id(store: Store) -> str | None:
    if not store.exists(layout.LATEST):
        return None
    return store.read_json(layout.LATEST)["run_id"]


def build_plan(cfg: RunConfig, generator: Generator, store: Store) -> Plan:
    """Deterministic plan of the run, with changes marked against the last complete run."""
    items = plan_table(expand_rows(read_catalog(cfg.catalog), cfg, generator))
    run_id = run_id_for(items, cfg)
    previous_id = latest_run_id(store)
    previous = None
    if previous_id and previous_id != run_id:
        previous = store.read_tables(layout.items_dir(previous_id))
    items, gone = mark_changes(items, previous)
    shards = make_shards(run_id, items.num_rows, cfg.sharding.items_per_shard)
    return Plan(run_id, items, shards, previous_id if previous is not None else None, gone)


def is_complete(store: Store, run_id: str) -> bool:
    return store.exists(layout.manifest(run_id))


def write_plan(store: Store, plan: Plan) -> None:
    """Write each shard's planned items once (a resumed run finds them already there)."""
    existing = set(store.list(f"{layout.run_dir(plan.run_id)}/plan"))
    offset = 0
    for spec in plan.shards:
        if f"{spec.name}.parquet" not in existing:
            store.write_table(
                layout.plan_part(plan.run_id, spec.name), plan.items.slice(offset, spec.n_items)
            )
        offset += spec.n_items


def pending_shards(store: Store, plan: Plan) -> list[ShardSpec]:
    """Shards whose metadata part is not committed yet."""
    done = set(store.list(layout.items_dir(plan.run_id)))
    return [s for s in plan.shards if f"{s.name}.parquet" not in done]


def changes_table(plan: Plan) -> pa.Table:
    current = plan.items.select(["id", "catalog_id", "change"])
    gone = plan.gone.append_column(
        "change", pa.array([schema.CHANGE_GONE] * plan.gone.num_rows, pa.string())
    )
    return pa.concat_tables([current, gone.cast(current.schema)])


def commit_run(
    store: Store, plan: Plan, summary: dict[str, Any], config: RunConfig
) -> dict[str, Any]:
    """Write the changes table, then the manifest (last), then point LATEST at this run."""
    changes = changes_table(plan)
    store.write_table(layout.changes(plan.run_id), changes)
    counts = pd.Series(changes.column("change").to_pylist()).value_counts().to_dict()
    manifest = {
        "run_id": plan.run_id,
        "schema_version": schema.SCHEMA_VERSION,
        "completed_at": dt.datetime.now(dt.UTC).isoformat(),
        "previous_run_id": plan.previous_run_id,
        "n_shards": len(plan.shards),
        "items": f"{layout.items_dir(plan.run_id)}/",
        "changes": {c: int(counts.get(c, 0)) for c in schema.CHANGES},
        "config": config.model_dump(mode="json"),
        **summary,
    }
    store.write_json(layout.manifest(plan.run_id), manifest)
    store.write_json(
        layout.LATEST, {"run_id": plan.run_id, "completed_at": manifest["completed_at"]}
    )
    return manifest


def read_items(store: Store, run_id: str | None = None) -> pd.DataFrame:
    """Item metadata of a run (default: the last complete run), joined with its validation
    metrics where the run was validated (validation values win where both exist)."""
    run_id = run_id or latest_run_id(store)
    if run_id is None:
        raise FileNotFoundError(f"no complete run under {store.url!r}")
    table = store.read_tables(layout.items_dir(run_id))
    if table is None:
        raise FileNotFoundError(f"run {run_id!r} has no item metadata under {store.url!r}")
    df = table.to_pandas()
    validation = store.read_tables(layout.validation_dir(run_id))
    if validation is None:
        return df
    val = validation.to_pandas().drop_duplicates("id").set_index("id")
    df = df.set_index("id")
    for col in val.columns:
        aligned = val[col].reindex(df.index)
        df[col] = aligned.combine_first(df[col]) if col in df.columns else aligned
    return df.reset_index()
