"""Which runs of an output a revocation sweep (``voices/revocation.py``) has already covered, so
that the next runs read only what is new.

``<root>/REVOCATION_SWEEPS.json`` records, per revoked consent (its id and ``revoked_at``), the
runs its sweep covered: ``"complete"`` for a complete run (it never changes again), else the item
parts read while the run was incomplete::

    {"format": 1, "consents": {"anna": {"revoked_at": "2026-03-01T09:00:00+00:00",
        "runs": {"catalog-1a2b": "complete", "catalog-3c4d": ["part-00000.parquet"]}}}}

A sweep reads only runs (and parts) not yet covered for some revoked consent: once a revocation
is swept, the next runs cost a read of this file, a listing of ``runs/`` and one of each
incomplete run's parts. A new run, a newly revoked consent, or a run completed since (read again
in full: its exports and chapters exist only now) is read once. The file lives at the root, not
under ``runs/``: every name there is a run, and a run's own folder is covered by its signature.
It is rewritten (atomically) after the moves and audit entries, so a sweep cut short leaves it as
it was and the next run reads the same runs again (files already gone are not counted again). A
consent whose ``revoked_at`` changed is swept again from scratch; runs no longer under ``runs/``
and consents no longer revoked leave the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from audio_synth_core.pipeline import runs
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

# Kinds whose items are audio made in the output (a validate run's items belong elsewhere).
GENERATING = ("catalog", "audiobook", "dataset")
COMPLETE = "complete"
SWEEPS_FORMAT = 1
# consent id -> {run id: COMPLETE or the item parts read while the run was incomplete}
Covered = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class RunToRead:
    """A run a sweep reads: its manifest (None: incomplete), the item parts to read, and the
    revoked consents it is not yet covered for."""

    run_id: str
    manifest: dict[str, Any] | None
    parts: list[str]
    consents: list[str]

    @property
    def kind(self) -> str | None:
        return self.manifest.get("kind", "catalog") if self.manifest is not None else None


def read_sweeps(store: Store) -> dict[str, Any]:
    """The output's sweeps file as stored (empty before the first sweep)."""
    rel = layout.REVOCATION_SWEEPS
    return store.read_json(rel) if store.exists(rel) else {}


def covered_runs(sweeps: Mapping[str, Any], revoked: Mapping[str, str]) -> Covered:
    """What ``sweeps`` says is covered, for each consent of ``revoked`` (id -> revoked_at);
    nothing for a consent the file knows revoked at another time."""
    known = sweeps.get("consents") or {}
    return {
        cid: dict(known[cid]["runs"]) if known.get(cid, {}).get("revoked_at") == at else {}
        for cid, at in revoked.items()
    }


def runs_to_read(
    store: Store, run_ids: Iterable[str], covered: Covered
) -> tuple[list[RunToRead], list[tuple[str, list[str]]]]:
    """The runs with parts to read (complete ones oldest first, then incomplete ones), and the
    complete runs of other kinds, with their pending consents, to mark without reading them."""
    complete: list[tuple[str, RunToRead]] = []
    incomplete: list[RunToRead] = []
    other_kinds: list[tuple[str, list[str]]] = []
    for run_id in run_ids:
        pending = [cid for cid, done in covered.items() if done.get(run_id) != COMPLETE]
        if not pending:
            continue  # the common case once swept: no read at all
        manifest = runs.completed(store, run_id)
        if manifest is not None:
            if manifest.get("kind", "catalog") not in GENERATING:
                other_kinds.append((run_id, pending))
                continue
            parts = store.list(layout.items_dir(run_id))
            run = RunToRead(run_id, manifest, parts, pending)
            complete.append((manifest.get("completed_at", ""), run))
        elif store.exists(layout.plan_dir(run_id)):  # a generating run that stopped
            listed = [p for p in store.list(layout.items_dir(run_id)) if p.endswith(".parquet")]
            seen = [set(covered[cid].get(run_id) or []) for cid in pending]
            parts = [p for p in listed if not all(p in s for s in seen)]
            if parts:
                incomplete.append(RunToRead(run_id, None, parts, pending))
    return [run for _, run in sorted(complete, key=lambda c: c[0])] + incomplete, other_kinds


def mark_covered(
    covered: Covered, read: Iterable[RunToRead], other_kinds: Iterable[tuple[str, list[str]]]
) -> None:
    """Record in ``covered`` what a sweep read (and the runs of other kinds it passed over)."""
    for run in read:
        for cid in run.consents:
            before = covered[cid].get(run.run_id)
            seen = set(before) if isinstance(before, list) else set()
            covered[cid][run.run_id] = COMPLETE if run.manifest else sorted(seen | set(run.parts))
    for run_id, cids in other_kinds:
        for cid in cids:
            covered[cid][run_id] = COMPLETE


def write_sweeps(
    store: Store,
    sweeps: Mapping[str, Any],
    revoked: Mapping[str, str],
    covered: Covered,
    present: set[str],
) -> None:
    """Rewrite the sweeps file when it changed: ``covered`` for the consents of ``revoked``,
    only the runs still ``present``."""
    data = {
        "format": SWEEPS_FORMAT,
        "consents": {
            cid: {
                "revoked_at": revoked[cid],
                "runs": {r: v for r, v in sorted(covered[cid].items()) if r in present},
            }
            for cid in sorted(revoked)
        },
    }
    if data != sweeps:
        store.write_json(layout.REVOCATION_SWEEPS, data)
