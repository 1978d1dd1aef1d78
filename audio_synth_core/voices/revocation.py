"""What a revoked consent does to audio already made: the next run into an output finds the items of
the previous complete run that were spoken with a persona whose consent is now revoked, and moves
their audio under ``quarantine/`` (kept, never delivered, still auditable) or deletes it, writing
one audit entry. Items whose audio is already gone are not counted again, so the sweep is
idempotent: a run that is retried after it moved some files finishes the rest.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from audio_synth_core.config.secrets import redact_url
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent, personas

Action = Literal["quarantine", "remove"]
_COLUMNS = ["id", "persona", "status", "audio_path", "audio_format"]
# How many affected item ids a run's manifest lists (the audit entry lists all of them).
MANIFEST_IDS = 100


def run_items(store: Store, run_id: str) -> pa.Table | None:
    """The columns of a run's items a sweep needs (not the texts), or None without items."""
    folder = layout.items_dir(run_id)
    tables = []
    for name in store.list(folder):
        if name.endswith(".parquet"):
            part = pq.ParquetFile(io.BytesIO(store.read_bytes(f"{folder}/{name}")))
            tables.append(part.read([c for c in _COLUMNS if c in part.schema_arrow.names]))
    return pa.concat_tables(tables, promote_options="default") if tables else None


def _personas(registry: Store, refs: Iterable[str]) -> list[personas.Persona]:
    found = []
    for ref in refs:
        try:
            found.append(personas.resolve(registry, ref))
        except personas.PersonaError:  # a persona deleted by hand: nothing to link it to
            continue
    return found


def affected_items(
    items: pa.Table, registry: Store, now: dt.datetime | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Ok items made with a persona whose consent is revoked at ``now``, and persona -> consent."""
    if "persona" not in items.column_names:
        return [], {}
    refs = {r for r in items.column("persona").to_pylist() if r}
    if not refs:
        return [], {}
    records = {r.id: r for r in consent.list_records(registry)}
    revoked = consent.revoked_refs(_personas(registry, refs), records, now)
    rows = [
        r
        for r in items.to_pylist()
        if r.get("persona") in revoked and r["status"] == schema.STATUS_OK
    ]
    return rows, revoked


def sweep(
    store: Store,
    registry: Store,
    run_id: str | None,
    action: Action = "quarantine",
    now: dt.datetime | None = None,
) -> dict[str, Any] | None:
    """Quarantine (or remove) the audio of ``run_id``'s items made with a revoked consent; one
    audit entry in the registry. Returns what was done (None: nothing to do)."""
    if not run_id or not any(r.revoked_at for r in consent.list_records(registry)):
        return None  # the common case costs one listing, not a read of the previous run
    items = run_items(store, run_id)
    if items is None:
        return None
    rows, revoked = affected_items(items, registry, now)
    done = []
    for row in rows:
        rel = row.get("audio_path") or layout.audio(row["id"], row["audio_format"])
        if not store.exists(rel):  # already withheld by an earlier sweep
            continue
        if action == "quarantine":
            store.move(rel, layout.quarantine(rel))
        else:
            store.fs.rm(store.path(rel))
        done.append(row)
    if not done:
        return None
    used = sorted({r["persona"] for r in done})
    ids = [r["id"] for r in done]
    entry = consent.audit(
        registry,
        action,
        reason="consent revoked",
        run_id=run_id,
        output=redact_url(store.url),
        personas=used,
        consent_ids=sorted({revoked[p] for p in used}),
        items=ids,
    )
    return {
        "action": action,
        "items": len(ids),
        "item_ids": ids[:MANIFEST_IDS],
        "personas": used,
        "consent_ids": sorted({revoked[p] for p in used}),
        "from_run_id": run_id,
        "audit": entry,
    }
