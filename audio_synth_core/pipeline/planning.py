"""Planning a catalog run: catalog rows -> items with content-derived ids -> shards, with changes
marked against the previous complete run.

The plan is deterministic: the same config and catalog give the same ids, seeds and shards, so the
run id (a hash of the plan) names the same run on every attempt, and finished shards are skipped.

It scales to millions of rows in bounded memory: the catalog is read in batches, each batch becomes
one Arrow record batch (columns, not a Python dict per item), and changes against the previous run
are Arrow set lookups. The plan is held as Arrow columns until ``runs.prepare`` writes its parts:
the parts' folder is named by the run id, a hash of every id, so no part can land in its final place
before the last row has been read.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from audio_synth_core.config.models import RunConfig, ShardingConfig
from audio_synth_core.errors import CatalogError, UnknownVoiceError
from audio_synth_core.generators.base import Generator
from audio_synth_core.inputs import text
from audio_synth_core.inputs.catalog import BATCH_ROWS, CatalogRow, iter_catalog
from audio_synth_core.pipeline import changes
from audio_synth_core.pipeline.runs import ShardSpec, completed, latest_run_id, make_shards
from audio_synth_core.store import ids, layout, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent, personas

STATUS_PENDING = schema.STATUS_PENDING
# Bump when planning logic that decides ids changes (chunking, voice choice): the plan key of a
# finished run then no longer matches, and the next run plans in full.
PLANNER_VERSION = 1


@dataclass(frozen=True)
class Plan:
    run_id: str
    items: pa.Table
    shards: list[ShardSpec]
    previous_run_id: str | None
    gone: pa.Table
    items_per_shard: int = 0


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


# Columns the planner fills per item; the rest of the item schema is constant or null until made.
_PER_ITEM = ("id", "catalog_id", "chunk_index", "text", "voice", "language", "seed")
_PER_ITEM += ("attributes", "status", "error", "persona", "generator_params")


class _Expander:
    """Turns batches of catalog rows into record batches of items (one per text chunk; a row that
    cannot be spoken becomes one failed item with a reason). Voice choices are cached per
    (voice, language) pair: a catalog has few distinct ones."""

    def __init__(
        self,
        cfg: RunConfig,
        generator: Generator,
        marks: str | None = None,
        registry: Store | None = None,
    ) -> None:
        self.cfg = cfg
        self.personas = personas.PersonaChoices(registry, generator)
        self.marks = marks
        self.generator = generator
        self.gen = generator.describe()
        self.params = json.dumps(self.gen["params"], sort_keys=True)
        self.voice_attrs = {v.name: v for v in generator.voices()}
        self.voices: dict[tuple[str | None, str | None], tuple[str, str] | str] = {}

    def _voice(self, row: CatalogRow) -> tuple[str, str] | str:
        key = (row.voice, row.language)
        if key not in self.voices:
            try:
                self.voices[key] = choose_voice(row, self.cfg, self.generator)
            except UnknownVoiceError as exc:
                self.voices[key] = str(exc)
        return self.voices[key]

    def batch(self, rows: Iterable[CatalogRow]) -> pa.RecordBatch:
        cfg, gen = self.cfg, self.gen
        cols: dict[str, list[Any]] = {c: [] for c in _PER_ITEM}

        def add(**values: Any) -> None:
            for c in _PER_ITEM:
                cols[c].append(values.get(c))

        for row in rows:
            error = row.error
            voice = language = None
            persona, params = None, self.params
            if error is None and row.persona and row.voice:
                error = f"row names both a voice ({row.voice!r}) and a persona ({row.persona!r})"
            elif error is None and row.persona:
                chosen = self.personas.choose(row.persona)
                if isinstance(chosen, str):
                    error = chosen
                else:
                    persona, voice, language, params = chosen
                    language = row.language or language
            elif error is None:
                chosen = self._voice(row)
                if isinstance(chosen, str):
                    error = chosen
                else:
                    voice, language = chosen
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
            if persona is not None:  # the persona's own attributes come before its voice's
                own = persona.attributes.model_dump(exclude={"language", "description"})
                attrs |= {k: v for k, v in own.items() if v and k not in attrs}
            info = self.voice_attrs.get((voice or "").split("+")[0])
            if info is not None:
                for key in ("gender", "age_band", "accent"):
                    value = getattr(info, key)
                    if value and key not in attrs:
                        attrs[key] = value
            attributes = json.dumps(attrs, sort_keys=True, default=str)
            if error is not None:
                add(
                    id=ids.content_id("failed", row.catalog_id, row.row_number, error),
                    catalog_id=row.catalog_id,
                    chunk_index=0,
                    text=row.text[:1000],
                    voice=row.voice,
                    language=row.language,
                    seed=0,
                    attributes=attributes,
                    status=schema.STATUS_FAILED,
                    error=error,
                    persona=row.persona,
                    generator_params=self.params,
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
                    params,
                    seed,
                    cfg.output.audio_format,
                    *([self.marks] if self.marks else []),
                    # A persona's version is part of the id: a new version regenerates its items.
                    *([persona.ref] if persona else []),
                )
                add(
                    id=item_id,
                    catalog_id=row.catalog_id,
                    chunk_index=index,
                    text=chunk_text,
                    voice=voice,
                    language=language,
                    seed=seed,
                    attributes=attributes,
                    status=STATUS_PENDING,
                    persona=persona.ref if persona else None,
                    generator_params=params,
                )
        return self._record_batch(cols)

    def _record_batch(self, cols: dict[str, list[Any]]) -> pa.RecordBatch:
        constant = {
            "generator": self.gen["name"],
            "generator_version": self.gen["version"],
            "audio_format": self.cfg.output.audio_format,
            "change": schema.CHANGE_NEW,
        }
        arrays = schema.item_arrays(cols, constant)
        return pa.RecordBatch.from_arrays(arrays, schema=schema.ITEM_SCHEMA)


def registry_of(cfg: RunConfig, store: Store) -> Store:
    """The registry of personas and consent records a run reads (default: its output)."""
    return personas.registry_store(cfg.consent.registry_url, store)


def expand_rows(
    rows: Iterable[CatalogRow], cfg: RunConfig, generator: Generator, marks: str | None = None
) -> pa.Table:
    """Items of ``rows`` as a table in the item schema (measurement columns null until made)."""
    return pa.Table.from_batches([_Expander(cfg, generator, marks).batch(rows)], schema.ITEM_SCHEMA)


def shard_size(n_items: int, sharding: ShardingConfig) -> int:
    """``items_per_shard``, grown so that a run has at most ``max_tasks`` shards (Prefect and the
    Dask scheduler slow down with tens of thousands of tasks)."""
    return max(sharding.items_per_shard, math.ceil(n_items / sharding.max_tasks))


def _ids(items: pa.Table) -> Iterator[str]:
    for chunk in items.column("id").chunks:
        yield from chunk.to_pylist()


def run_id_for(items: pa.Table, cfg: RunConfig, items_per_shard: int | None = None) -> str:
    per_shard = items_per_shard or shard_size(items.num_rows, cfg.sharding)
    digest = ids.stream_digest(_ids(items), per_shard, schema.SCHEMA_VERSION)
    return ids.run_id(cfg.name, digest)


def build_plan(
    cfg: RunConfig,
    generator: Generator,
    store: Store,
    batch_rows: int = BATCH_ROWS,
    marks: str | None = None,
) -> Plan:
    """Deterministic plan of the run, with changes marked against the last complete catalog run.

    ``marks`` identifies what is applied to every clip after synthesis (the watermark's scheme and
    key fingerprint): part of each item id, so changing it regenerates the audio."""
    expander = _Expander(cfg, generator, marks, registry_of(cfg, store))
    batches = [expander.batch(rows) for rows in iter_catalog(cfg.catalog, batch_rows)]
    # Before any work: a voice imitating a real person needs a valid consent for this use.
    expander.personas.require_consent("catalog")
    # One chunk per catalog batch: no contiguous copy of the whole plan is ever made.
    items = pa.Table.from_batches(batches, schema.ITEM_SCHEMA)
    del batches
    per_shard = shard_size(items.num_rows, cfg.sharding)
    run_id = run_id_for(items, cfg, per_shard)
    previous_id = latest_run_id(store, "catalog")
    previous_used = None
    parts = store.list(layout.items_dir(previous_id)) if previous_id else []
    if previous_id != run_id and any(n.endswith(".parquet") for n in parts):
        previous_used = previous_id
    # The previous table is handed over, not kept here: mark_changes frees it column by column.
    items, gone = changes.mark_changes(
        items, changes.previous_items(store, previous_used) if previous_used else None
    )
    shards = make_shards(run_id, items.num_rows, per_shard)
    return Plan(run_id, items, shards, previous_used, gone, per_shard)


def plan_key(cfg: RunConfig, generator: Generator, marks: str | None = None) -> str:
    """A hash of everything a plan is made from: the catalog's bytes, the config sections that
    decide ids and shards, the generator and the planner version. Equal keys mean equal plans,
    so a finished run with this key needs no re-planning (sha256 reads ~1 GB/s)."""
    h = hashlib.sha256()
    try:
        with fsspec.open(cfg.catalog.path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    except FileNotFoundError:
        raise CatalogError(f"catalog {cfg.catalog.path!r} does not exist") from None
    decides = cfg.model_dump(
        mode="json", include={"name", "catalog", "voices", "text", "sharding", "output"}
    )
    decides["output"] = decides["output"]["audio_format"]
    decides["sharding"].pop("batch_size", None)
    h.update(
        ids.digest(
            PLANNER_VERSION,
            schema.SCHEMA_VERSION,
            decides,
            generator.describe(),
            *([marks] if marks else []),  # a new watermark key or scheme is a new plan
        ).encode()
    )
    # Personas and consent live outside the catalog: a new persona version, or a consent that
    # expired or was revoked, changes the key, so the run re-plans (and re-checks consent).
    registry = registry_of(cfg, Store(cfg.output.url, cfg.output.storage_options))
    h.update(consent.registry_digest(registry).encode())
    return h.hexdigest()


def finished_run(store: Store, key: str) -> dict[str, Any] | None:
    """The manifest of the last complete catalog run when it was planned from ``key``, else None:
    a no-op re-run is answered without reading the catalog row by row."""
    previous = latest_run_id(store, "catalog")
    manifest = completed(store, previous) if previous else None
    return manifest if manifest is not None and manifest.get("plan_key") == key else None


def preview(plan: Plan, store: Store, max_failed: int = 20) -> dict[str, Any]:
    """What a run of ``plan`` would do, without doing it: counts, shards, failed rows (first
    ``max_failed`` with reasons). Reads the output, writes nothing."""
    items = plan.items
    status = items.column("status")
    failed = items.filter(pc.equal(status, schema.STATUS_FAILED))
    rows = failed.slice(0, max_failed).select(["catalog_id", "error"]).to_pylist()
    return {
        "run_id": plan.run_id,
        "complete": completed(store, plan.run_id) is not None,
        "previous_run_id": plan.previous_run_id,
        "items": items.num_rows,
        "shards": len(plan.shards),
        "items_per_shard": plan.items_per_shard,
        "to_generate": int(pc.sum(pc.equal(status, STATUS_PENDING)).as_py() or 0),
        "changes": changes.change_counts(changes.changes_table(plan.items, plan.gone)),
        "failed": failed.num_rows,
        "failed_rows": rows,
    }
