"""The run lifecycle every flow shares: prepare, (the flow maps its shards), commit, read back.

Outputs are the source of truth: a shard is done when its done-marker part exists, a run is done
when its manifest exists (written last), and LATEST.json names the last complete run of any kind.
A flow differs only in what it plans and what it does after its shards:

    done = runs.completed(store, run_id)          # a finished run is returned, not redone
    pending = runs.prepare(store, run_id, items, shards, plan_dir, done_part)
    ... map a task over ``pending`` ...
    manifest = runs.commit(store, kind, run_id, summary, config)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audio_synth_core.pipeline import lease
from audio_synth_core.provenance.files import sign_run
from audio_synth_core.provenance.signing import Signer
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store

KINDS = ("catalog", "validate", "train", "compare", "dataset", "audiobook")


@dataclass(frozen=True)
class ShardSpec:
    """What a worker needs to run one shard: small, so it travels cheaply to any worker.

    ``label`` names a shard that is not a slice of items (e.g. a compare candidate)."""

    run_id: str
    index: int
    n_items: int
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or f"part-{self.index:05d}"


def make_shards(run_id: str, n_items: int, items_per_shard: int) -> list[ShardSpec]:
    """Consecutive slices of ``items_per_shard`` items (the last one shorter)."""
    return [
        ShardSpec(run_id, i, min(items_per_shard, n_items - start))
        for i, start in enumerate(range(0, n_items, items_per_shard))
    ]


def completed(store: Store, run_id: str) -> dict[str, Any] | None:
    """The manifest of ``run_id`` when that run is complete, else None."""
    rel = layout.manifest(run_id)
    return store.read_json(rel) if store.exists(rel) else None


def write_parts(store: Store, folder: str, items: pa.Table, shards: Sequence[ShardSpec]) -> None:
    """Write each shard's slice of ``items`` under ``folder`` once (a resumed run finds them)."""
    existing = set(store.list(folder))
    offset = 0
    for spec in shards:
        if f"{spec.name}.parquet" not in existing:
            store.write_table(f"{folder}/{spec.name}.parquet", items.slice(offset, spec.n_items))
        offset += spec.n_items


def pending(
    store: Store, shards: Sequence[ShardSpec], done_part: Callable[[ShardSpec], str]
) -> list[ShardSpec]:
    """Shards whose done-marker part does not exist yet (one listing per folder, not per shard)."""
    listed: dict[str, set[str]] = {}
    out = []
    for spec in shards:
        folder, _, name = done_part(spec).rpartition("/")
        if folder not in listed:
            listed[folder] = set(store.list(folder))
        if name not in listed[folder]:
            out.append(spec)
    return out


def prepare(
    store: Store,
    items: pa.Table,
    shards: Sequence[ShardSpec],
    plan_dir: str,
    done_part: Callable[[ShardSpec], str],
) -> list[ShardSpec]:
    """Write the plan parts (idempotent) and return the shards still to do."""
    write_parts(store, plan_dir, items, shards)
    return pending(store, shards, done_part)


def commit(
    store: Store,
    kind: str,
    run_id: str,
    summary: Mapping[str, Any],
    config: Mapping[str, Any],
    previous_run_id: str | None = None,
    signer: Signer | None = None,
    c2pa: bool = False,
) -> dict[str, Any]:
    """Write the manifest (last: the run is complete exactly when it exists), then LATEST.json.

    With a ``signer``, the run's signed file listing (provenance/files.py) is written after the
    manifest, which it covers, and before LATEST.json; with ``c2pa`` (the items carry C2PA
    manifests) the manifest says so and the listing covers the FLAC items' sidecars."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; known: {', '.join(KINDS)}")
    lease.check_held(store)  # a run whose lease was taken over never writes a manifest
    manifest = {
        "run_id": run_id,
        "kind": kind,
        "schema_version": schema.SCHEMA_VERSION,
        "completed_at": dt.datetime.now(dt.UTC).isoformat(),
        "previous_run_id": previous_run_id,
        "config": dict(config),
        **summary,
    }
    if signer is not None:  # the manifest says so, and the listing covers the manifest
        manifest["provenance"] = {
            "signature": layout.provenance_signature(run_id),
            "public_key_fingerprint": signer.public_fingerprint,
            **({"c2pa": True} if c2pa else {}),  # the items' audio carries C2PA manifests
        }
    store.write_json(layout.manifest(run_id), manifest)
    if signer is not None:
        sign_run(store, run_id, signer, sidecars=c2pa)
    store.write_json(
        layout.LATEST,
        {"run_id": run_id, "kind": kind, "completed_at": manifest["completed_at"]},
    )
    return manifest


def latest_run_id(store: Store, kind: str | None = None) -> str | None:
    """The last complete run (of ``kind``, when given: LATEST.json names any kind's last run)."""
    if store.exists(layout.LATEST):
        latest = store.read_json(layout.LATEST)
        if kind is None or latest.get("kind", "catalog") == kind:
            return latest["run_id"]
    if kind is None:
        return None
    manifests = (completed(store, r) for r in list_runs(store))
    found = [m for m in manifests if m and m.get("kind", "catalog") == kind]
    return max(found, key=lambda m: m["completed_at"])["run_id"] if found else None


def list_runs(store: Store) -> list[str]:
    """Ids of the complete runs under the output."""
    return [r for r in store.list(layout.RUNS) if store.exists(layout.manifest(r))]


def read_manifest(store: Store, run_id: str | None = None) -> dict[str, Any]:
    """The manifest of ``run_id`` (default: the last complete run)."""
    run_id = run_id or latest_run_id(store)
    if run_id is None:
        raise FileNotFoundError(f"no complete run under {store.url!r}")
    manifest = completed(store, run_id)
    if manifest is None:
        raise FileNotFoundError(f"run {run_id!r} under {store.url!r} is not complete")
    return manifest


def audio_location(store: Store, row: Mapping[str, Any]) -> str | None:
    """Where an item's audio is now: its ``audio_path`` under the root ``store`` was opened at
    (a copied, moved or downloaded output finds its own audio), else its absolute ``audio_uri``
    (imported audio outside the output, outputs written before schema version 2)."""
    rel = row.get("audio_path")
    return store.uri(rel) if isinstance(rel, str) and rel else row.get("audio_uri")


def resolve_audio(store: Store, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``audio_uri`` replaced by ``audio_location`` wherever ``audio_path`` is set."""
    if "audio_path" not in df.columns or df.empty:
        return df
    own = df["audio_path"].notna()
    if own.any():
        pairs = zip(df["audio_path"], df["audio_uri"], own, strict=True)
        uris = [store.uri(rel) if is_own else uri for rel, uri, is_own in pairs]
        # Same dtype as read (pandas 3: "str"), which the data contract checks.
        df = df.assign(audio_uri=pd.Series(uris, index=df.index, dtype=df["audio_uri"].dtype))
    return df


def read_items(store: Store, run_id: str | None = None) -> pd.DataFrame:
    """Item metadata of a run (default: the last complete run), joined with its validation
    metrics where the run was validated (validation values win where both exist).

    ``audio_uri`` is where each file is now, seen from the root ``store`` was opened at
    (``audio_location``), not necessarily the URL it was written to. This holds the whole run:
    run-level steps read it part by part instead (``iter_items``)."""
    run_id = run_id or latest_run_id(store)
    if run_id is None:
        raise FileNotFoundError(f"no complete run under {store.url!r}")
    table = store.read_tables(layout.items_dir(run_id))
    if table is None:
        raise FileNotFoundError(f"run {run_id!r} has no item metadata under {store.url!r}")
    df = resolve_audio(store, table.to_pandas())
    validation = store.read_tables(layout.validation_dir(run_id))
    return df if validation is None else join_validation(df, validation.to_pandas())


def join_validation(df: pd.DataFrame, val: pd.DataFrame) -> pd.DataFrame:
    """Items ``df`` with the validation metrics ``val`` joined by id (validation values win
    where both exist; an item without metrics gets nulls)."""
    val = val.drop_duplicates("id").set_index("id")
    df = df.set_index("id")
    for col in val.columns:
        aligned = val[col].reindex(df.index)
        df[col] = aligned.combine_first(df[col]) if col in df.columns else aligned
    return df.reset_index()


@dataclass(frozen=True)
class RunParts:
    """A run's Parquet parts and the schemas a whole-run read would unify them to."""

    run_id: str
    names: list[str]  # items part file names (``part-00000.parquet``), in row order
    sizes: list[int]  # rows of each items part
    items_schema: pa.Schema
    validation_schema: pa.Schema | None  # None: the run was not validated
    validated: frozenset[str]  # names of the parts that have a validation part

    @property
    def columns(self) -> list[str]:
        """The columns of ``read_items`` (and of every ``iter_items`` part)."""
        extra = [] if self.validation_schema is None else self.validation_schema.names
        return list(dict.fromkeys([*self.items_schema.names, *extra]))


def _footer(store: Store, rel: str) -> pq.FileMetaData:
    with store.fs.open(store.path(rel), "rb") as f:  # the footer only, not the data
        return pq.read_metadata(f)


def run_parts(store: Store, run_id: str) -> RunParts:
    """The parts of ``run_id`` and their unified schemas (read from the Parquet footers)."""
    items_dir, val_dir = layout.items_dir(run_id), layout.validation_dir(run_id)
    names = [n for n in store.list(items_dir) if n.endswith(".parquet")]
    if not names:
        raise FileNotFoundError(f"run {run_id!r} has no item metadata under {store.url!r}")
    validated = [n for n in store.list(val_dir) if n.endswith(".parquet")]
    unify = partial(pa.unify_schemas, promote_options="default")
    items = [_footer(store, f"{items_dir}/{n}") for n in names]
    checked = [_footer(store, f"{val_dir}/{n}").schema.to_arrow_schema() for n in validated]
    return RunParts(
        run_id,
        names,
        [m.num_rows for m in items],
        unify([m.schema.to_arrow_schema() for m in items]),
        unify(checked) if checked else None,
        frozenset(validated),
    )


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns and types (missing ones null), as a unifying concat
    of it with other parts would give it."""
    if table.schema.equals(schema):
        return table
    n = table.num_rows
    arrays = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def read_parts(store: Store, parts: RunParts, names: Sequence[str]) -> pd.DataFrame:
    """``read_items`` of the items parts ``names`` only: their rows joined with their shards'
    validation parts (a shard's metrics describe that shard's items), with the run-wide columns
    and types."""
    items_dir, val_dir = layout.items_dir(parts.run_id), layout.validation_dir(parts.run_id)
    items = [_conformed(store.read_table(f"{items_dir}/{n}"), parts.items_schema) for n in names]
    df = resolve_audio(store, pa.concat_tables(items, promote_options="default").to_pandas())
    if parts.validation_schema is None:
        return df
    # A part that was not validated adds no rows: its items get null metrics, as in a run join.
    val = [
        _conformed(store.read_table(f"{val_dir}/{n}"), parts.validation_schema)
        for n in names
        if n in parts.validated
    ]
    joined = pa.concat_tables(
        [parts.validation_schema.empty_table(), *val], promote_options="default"
    )
    return join_validation(df, joined.to_pandas())


def iter_items(
    store: Store, parts: RunParts, rows: int = 1
) -> Iterator[tuple[list[str], pd.DataFrame]]:
    """``read_items`` a few consecutive items parts at a time (about ``rows`` rows, at least one
    part), in row order: (their names, their joined rows). Batching parts keeps the per-part
    cost of pandas small; ``rows`` bounds what is held."""
    batch: list[str] = []
    size = 0
    for name, n in zip(parts.names, parts.sizes, strict=True):
        batch.append(name)
        size += n
        if size >= rows:
            yield batch, read_parts(store, parts, batch)
            batch, size = [], 0
    if batch:
        yield batch, read_parts(store, parts, batch)
