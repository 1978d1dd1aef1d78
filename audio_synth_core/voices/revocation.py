"""What a revoked consent does to audio already made: the next run into an output finds the items of
the previous complete run (of its own kind) that were spoken with a persona whose consent is now
revoked, and moves their audio under ``quarantine/`` (kept, never delivered, still auditable) or
deletes it, writing one audit entry.

What was made from those items goes with them: a dataset run's augmented copies of the clips and
its exports (which bundle the audio); an audiobook run's chapters with a chunk in that voice and
every edition of the book holding such a chapter. Files already gone are not counted again, so
the sweep is idempotent: a run that is retried after it moved some files finishes the rest.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from audio_synth_core.config.secrets import redact_url
from audio_synth_core.pipeline.stats import read_columns
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


def _files_under(store: Store, folder: str) -> list[str]:
    """Every file under ``folder`` (relative to the root; none when it does not exist)."""
    root = store.path("").rstrip("/")
    try:
        found = store.fs.find(store.path(folder))
    except FileNotFoundError:
        return []
    return sorted(p[len(root) + 1 :] for p in found if p.startswith(f"{root}/"))


def _dataset_derived(store: Store, run_id: str, ids: set[str]) -> list[str]:
    """A dataset run's augmented copies of the clips ``ids`` and, when there are any, its
    exports (every export format bundles the clips' audio)."""
    made = read_columns(store, run_id, ["clean_id", "audio_path"], layout.dataset_dir(run_id))
    if made.empty:  # not a dataset run
        return []
    mine = made.loc[made["clean_id"].isin(ids) & made["audio_path"].notna(), "audio_path"]
    # Each once, in order: a clip is in the dataset once per use.
    return [*dict.fromkeys(mine), *_files_under(store, layout.dataset_export_dir(run_id))]


def _audiobook_derived(store: Store, run_id: str, ids: set[str]) -> list[str]:
    """An audiobook run's chapters with a chunk among ``ids`` and the editions holding them."""
    rel = layout.manifest(run_id)
    manifest = store.read_json(rel) if store.exists(rel) else {}
    out: list[str] = []
    for book in manifest.get("books") or []:
        hit = False
        for chapter in book.get("chapters") or []:
            done = layout.audiobook_chapter_done(book["book_id"], chapter["key"])
            if not store.exists(done):
                continue
            record = store.read_json(done)
            used = {c.get("used_id") for c in record.get("checks") or []}
            if ids & (set(record.get("chunk_ids") or []) | used):
                hit = True
                out += _files_under(
                    store, layout.audiobook_chapter_dir(book["book_id"], chapter["key"])
                )
        if hit and book.get("book_json"):
            out += _files_under(store, book["book_json"].rsplit("/", 1)[0])
    return out


def _withhold(store: Store, rel: str, action: Action) -> bool:
    """Move ``rel`` under quarantine/ (or delete it); False when it is already gone."""
    if not store.exists(rel):
        return False
    if action == "quarantine":
        store.move(rel, layout.quarantine(rel))
    else:
        store.fs.rm(store.path(rel))
    return True


def sweep(
    store: Store,
    registry: Store,
    run_id: str | None,
    action: Action = "quarantine",
    now: dt.datetime | None = None,
) -> dict[str, Any] | None:
    """Quarantine (or remove) the audio of ``run_id``'s items made with a revoked consent, and
    what was made from it; one audit entry in the registry. Returns what was done (None:
    nothing to do)."""
    if not run_id or not any(r.revoked_at for r in consent.list_records(registry)):
        return None  # the common case costs one listing, not a read of the previous run
    items = run_items(store, run_id)
    if items is None:
        return None
    rows, revoked = affected_items(items, registry, now)
    if not rows:
        return None
    done = [
        row
        for row in rows
        if _withhold(
            store, row.get("audio_path") or layout.audio(row["id"], row["audio_format"]), action
        )
    ]
    affected = {r["id"] for r in rows}
    # The markers (chapter.json, book.json) go last: a sweep cut short finds the chapter again
    # through them and finishes it.
    derived = sorted(
        _dataset_derived(store, run_id, affected) + _audiobook_derived(store, run_id, affected),
        key=lambda rel: rel.endswith(("chapter.json", "book.json")),
    )
    files = [rel for rel in derived if _withhold(store, rel, action)]
    if not done and not files:
        return None
    used = sorted({r["persona"] for r in rows})
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
        files=files,
    )
    return {
        "action": action,
        "items": len(ids),
        "item_ids": ids[:MANIFEST_IDS],
        "files": len(files),  # made from those items: chapters, editions, copies, exports
        "file_paths": files[:MANIFEST_IDS],
        "personas": used,
        "consent_ids": sorted({revoked[p] for p in used}),
        "from_run_id": run_id,
        "audit": entry,
    }
