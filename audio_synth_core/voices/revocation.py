"""What a revoked consent does to audio already made: the next catalog, audiobook or dataset run
into an output (its first step, before planning) finds every existing item of the output spoken
with a persona whose consent is now revoked, and moves its audio under ``quarantine/`` (kept, never
delivered, still auditable) or deletes it, with one audit entry per run that gave something up.

Scope: every complete run of a generating kind (catalog, audiobook, dataset) under ``runs/``,
whatever the kind of the run that sweeps, and the committed shards (``items/`` parts) of an
incomplete one (a run that stopped; its ``plan/`` folder says it generates). Runs of other kinds
(validate, compare, train) made no audio here and are passed over. What was made from the items
goes with them: an audio file's C2PA sidecar (``layout.c2pa_sidecar``); a dataset run's augmented
copies of the clips and its exports (they bundle the audio); a complete audiobook run's chapters
with a chunk in that voice, the chunks' regenerated takes, and every edition of the book holding
such a chapter. Not found: chapters an incomplete audiobook run delivered before it stopped (only
its manifest lists its books).

A run is read once per revoked consent: ``voices/sweeps.py`` records which runs a consent's sweep
covered (``<root>/REVOCATION_SWEEPS.json``, written after the moves and audit entries), so the
next runs read only runs made since and runs that completed since. A sweep cut short is redone by
the next run; files already gone are not counted again, so it is idempotent.

Items are read part by part, only the needed columns, keeping only affected rows. Audio shared by
runs (a catalog's unchanged items) is withheld once, counted under the oldest run holding it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from audio_synth_core.config.secrets import redact_url
from audio_synth_core.pipeline.stats import column_parts
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent, personas, sweeps
from audio_synth_core.voices.sweeps import RunToRead

Action = Literal["quarantine", "remove"]
_COLUMNS = ("id", "persona", "status", "audio_path", "audio_format", "catalog_id")
# How many affected item ids and files a run's manifest lists per run (the audit lists all).
MANIFEST_IDS = 100


@dataclass(frozen=True)
class RunWithheld:
    """What one run gave up: its items whose audio this sweep withheld, and the files made
    from them (sidecars, chapters, editions, augmented copies, exports)."""

    run_id: str
    kind: str | None  # None: an incomplete run
    items: list[str]
    files: list[str]
    personas: list[str]
    consent_ids: list[str]
    audit: str

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "items": len(self.items),
            "item_ids": self.items[:MANIFEST_IDS],
            "files": len(self.files),
            "file_paths": self.files[:MANIFEST_IDS],
            "personas": self.personas,
            "consent_ids": self.consent_ids,
            "audit": self.audit,
        }


@dataclass(frozen=True)
class Sweep:
    """What a sweep of an output did: the runs whose items it read, what each run gave up."""

    action: Action
    scanned: list[str]
    runs: list[RunWithheld]

    @property
    def items(self) -> int:
        return sum(len(r.items) for r in self.runs)

    @property
    def files(self) -> int:
        return sum(len(r.files) for r in self.runs)

    def summary(self) -> dict[str, Any] | None:
        """A run manifest's ``consent_revoked`` (None: nothing was withheld)."""
        if not self.runs:
            return None
        return {
            "action": self.action,
            "items": self.items,
            "item_ids": [i for r in self.runs for i in r.items][:MANIFEST_IDS],
            "files": self.files,
            "personas": sorted({p for r in self.runs for p in r.personas}),
            "consent_ids": sorted({c for r in self.runs for c in r.consent_ids}),
            "runs": [r.summary() for r in self.runs],
            "runs_scanned": len(self.scanned),
        }


# --- what a run holds ---


def _consent_of(registry: Store, revoked: Mapping[str, str]) -> Callable[[str], str | None]:
    """persona ref -> the id of its revoked consent (None: not revoked), each ref resolved once
    per sweep (runs share their personas)."""

    @functools.cache
    def of(ref: str) -> str | None:
        try:
            cid = personas.resolve(registry, ref).consent_id
        except personas.PersonaError:  # a persona deleted by hand: nothing to link it to
            return None
        return cid if cid in revoked else None

    return of


def affected_rows(
    store: Store, run: RunToRead, consent_of: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    """Ok items of ``run.parts`` made with a persona whose consent is one of ``run.consents``,
    read one part at a time (only the columns a sweep needs, only the affected rows kept)."""
    rows: list[dict[str, Any]] = []
    for _, table in column_parts(store, layout.items_dir(run.run_id), _COLUMNS, run.parts):
        if "persona" not in table.column_names:
            continue
        refs = [r for r in pc.unique(table.column("persona")).to_pylist() if r]
        hit = [r for r in refs if consent_of(r) in run.consents]
        if hit:
            mask = pc.and_(
                pc.is_in(table.column("persona"), pa.array(hit)),
                pc.equal(table.column("status"), schema.STATUS_OK),
            )
            rows += table.filter(mask).to_pylist()
    return rows


def _dataset_derived(store: Store, run_id: str, ids: set[str]) -> list[str]:
    """A dataset run's augmented copies of the clips ``ids`` (with their sidecars) and, when
    there are any, its exports (every export format bundles the clips' audio)."""
    wanted = pa.array(sorted(ids))
    copies: dict[str, None] = {}  # each once, in order: a clip is in the dataset once per use
    parts = 0
    for _, made in column_parts(store, layout.dataset_dir(run_id), ["clean_id", "audio_path"]):
        parts += 1
        if {"clean_id", "audio_path"} <= set(made.column_names):
            mask = pc.and_(
                pc.is_in(made.column("clean_id"), wanted), pc.is_valid(made["audio_path"])
            )
            for rel in made.filter(mask).column("audio_path").to_pylist():
                copies.update(dict.fromkeys([layout.c2pa_sidecar(rel), rel]))
    if not parts:  # not a dataset run
        return []
    return [*copies, *store.files_under(layout.dataset_export_dir(run_id))]


def _audiobook_derived(
    store: Store, manifest: Mapping[str, Any], rows: list[dict[str, Any]]
) -> list[str]:
    """An audiobook run's chapters holding a chunk of ``rows`` (a chunk's ``catalog_id`` is
    ``<book id>/<chapter slot>``), those chunks' regenerated takes, and the editions holding
    such a chapter. Found through the run's items, not the chapter's files: a chapter shared
    with a run swept before is gone, and the later run's edition holding it still goes."""
    formats = {r["id"]: r.get("audio_format") for r in rows}
    slots = {r.get("catalog_id") for r in rows}
    out: list[str] = []
    for book in manifest.get("books") or []:
        book_id = book["book_id"]
        hit = [c for c in book.get("chapters") or [] if f"{book_id}/{c.get('slot')}" in slots]
        for chapter in hit:
            done = layout.audiobook_chapter_done(book_id, chapter["key"])
            record = store.read_json(done) if store.exists(done) else {}
            out += [
                layout.audio(c["used_id"], formats[c["item_id"]])
                for c in record.get("checks") or []
                if c.get("item_id") in formats and c.get("used_id") not in (None, c["item_id"])
            ]
            out += store.files_under(layout.audiobook_chapter_dir(book_id, chapter["key"]))
        if hit and book.get("book_json"):
            out += store.files_under(book["book_json"].rsplit("/", 1)[0])
    return out


# --- withholding ---


def _withhold(store: Store, rel: str, action: Action) -> bool:
    """Move ``rel`` under quarantine/ (or delete it); False when it is already gone."""
    if not store.exists(rel):
        return False
    if action == "quarantine":
        store.move(rel, layout.quarantine(rel))
    else:
        store.fs.rm(store.path(rel))
    return True


def _withhold_run(
    store: Store,
    registry: Store,
    run: RunToRead,
    rows: list[dict[str, Any]],
    consent_of: Callable[[str], str | None],
    action: Action,
) -> RunWithheld | None:
    """Withhold ``rows``' audio of ``run`` and what was made from it; audit it (None: all of it
    was already gone)."""
    items: list[str] = []
    files: list[str] = []
    for row in rows:
        rel = row.get("audio_path") or layout.audio(row["id"], row["audio_format"])
        # The sidecar on its own, not only with its audio: a sweep cut short between the two
        # finds it the next time.
        if _withhold(store, layout.c2pa_sidecar(rel), action):
            files.append(layout.c2pa_sidecar(rel))
        if _withhold(store, rel, action):
            items.append(row["id"])
    affected = {r["id"] for r in rows}
    derived = []
    if run.kind in ("dataset", None):
        derived += _dataset_derived(store, run.run_id, affected)
    if run.kind == "audiobook" and run.manifest is not None:
        derived += _audiobook_derived(store, run.manifest, rows)
    # The markers (chapter.json, book.json) go last: a chapter cut short midway still names
    # its regenerated takes to the sweep that finishes it.
    derived.sort(key=lambda rel: rel.endswith(("chapter.json", "book.json")))
    files += [rel for rel in derived if _withhold(store, rel, action)]
    if not items and not files:
        return None
    used = sorted({r["persona"] for r in rows})
    cids = sorted({c for c in map(consent_of, used) if c})
    entry = consent.audit(
        registry,
        action,
        reason="consent revoked",
        run_id=run.run_id,
        kind=run.kind,
        output=redact_url(store.url),
        personas=used,
        consent_ids=cids,
        items=items,
        files=files,
    )
    return RunWithheld(run.run_id, run.kind, items, files, used, cids, entry)


def sweep(
    store: Store, registry: Store, action: Action = "quarantine", now: dt.datetime | None = None
) -> Sweep | None:
    """Quarantine (or remove) the audio of every item of ``store`` made with a consent revoked at
    ``now``, in the runs not yet swept for that consent, and what was made from it; one audit
    entry per run in the registry. None when no consent is revoked."""
    revoked = {
        cid: at.isoformat()
        for cid, at in consent.revoked_at(consent.list_records(registry), now).items()
    }
    if not revoked:
        return None  # the common case costs one listing of the registry, not of the runs
    stored = sweeps.read_sweeps(store)
    covered = sweeps.covered_runs(stored, revoked)
    run_ids = store.list(layout.RUNS)
    to_read, other_kinds = sweeps.runs_to_read(store, run_ids, covered)
    consent_of = _consent_of(registry, revoked)
    withheld = []
    for run in to_read:
        rows = affected_rows(store, run, consent_of)
        done = _withhold_run(store, registry, run, rows, consent_of, action) if rows else None
        if done is not None:
            withheld.append(done)
    # Recorded after the moves and audit entries: a sweep cut short is redone by the next run.
    sweeps.mark_covered(covered, to_read, other_kinds)
    sweeps.write_sweeps(store, stored, revoked, covered, set(run_ids))
    return Sweep(action, [run.run_id for run in to_read], withheld)
