"""Garbage collection of an output root: plan what no run needs any more, then delete it.

What is deleted:
- audio under ``audio/`` that none of the last ``keep_runs`` complete catalog runs references
  (superseded or gone items), and that no other run protects (below); a C2PA sidecar
  (``layout.c2pa_sidecar``) lives and dies with its audio: kept exactly when its audio is;
- temporary files (``*.tmp-<hex>``, left by killed local writes) older than ``tmp_grace_s``.

What is never deleted: audio referenced by a kept catalog run; audio referenced by any complete
run of another kind (a validate run of this very output), or by the committed shards of an
incomplete run (a crashed run that a re-run resumes: its finished shards are not redone); anything
outside ``audio/`` except stale temporary files (quarantine, evaluations, models, runs). Only catalog
runs write ``audio/``, so ``keep_runs`` counts catalog runs, newest first by ``completed_at``.

Collection holds the output's lease (``pipeline/lease.py``) while it plans and deletes, so no run
is in progress meanwhile, and no run starts (it waits) until collection is done.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audio_synth_core.errors import StorageError
from audio_synth_core.pipeline import lease as leases
from audio_synth_core.pipeline import runs
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

DEFAULT_TMP_GRACE_S = 3600.0
AUDIO_DIR = "audio"
# What Store.write_bytes names a local file while it is being written.
TMP_NAME = re.compile(r"\.tmp-[0-9a-f]{32}$")


@dataclass(frozen=True)
class GcPlan:
    """What a collection deletes (relative paths with their sizes) and why the rest stays."""

    kept_runs: list[str]
    protected_runs: list[str]
    audio: list[tuple[str, int]]
    tmp: list[tuple[str, int]]
    audio_kept: int

    @property
    def n_files(self) -> int:
        return len(self.audio) + len(self.tmp)

    @property
    def n_bytes(self) -> int:
        return sum(size for _, size in self.audio) + sum(size for _, size in self.tmp)

    def summary(self) -> dict[str, Any]:
        return {
            "kept_runs": self.kept_runs,
            "protected_runs": self.protected_runs,
            "audio_files": len(self.audio),
            "audio_bytes": sum(size for _, size in self.audio),
            "audio_kept": self.audio_kept,
            "tmp_files": len(self.tmp),
            "tmp_bytes": sum(size for _, size in self.tmp),
            "files": self.n_files,
            "bytes": self.n_bytes,
        }


def referenced_audio(store: Store, run_id: str) -> set[str]:
    """Paths under the root that the items of ``run_id`` name: the content-addressed path of each
    id (catalog items), their ``audio_path``, and any ``audio_uri`` inside this output."""
    table = store.read_tables(layout.items_dir(run_id))
    if table is None:
        return set()
    cols = set(table.column_names)
    refs: set[str] = set()
    if {"id", "audio_format"} <= cols:
        ids = table.column("id").to_pylist()
        fmts = table.column("audio_format").to_pylist()
        refs.update(layout.audio(i, f) for i, f in zip(ids, fmts, strict=True) if i and f)
    if "audio_path" in cols:
        refs.update(p for p in table.column("audio_path").to_pylist() if p)
    if "audio_uri" in cols:
        prefix = store.uri("")
        refs.update(
            u[len(prefix) :]
            for u in table.column("audio_uri").to_pylist()
            if u and u.startswith(prefix)
        )
    return refs


def _age_s(info: dict[str, Any], now: float) -> float:
    """Seconds since a listed file was last written (0 when the store does not say: kept)."""
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
    if isinstance(stamp, dt.datetime):
        stamp = stamp.timestamp()
    return now - float(stamp) if isinstance(stamp, int | float) else 0.0


def _files(store: Store) -> Iterable[tuple[str, dict[str, Any]]]:
    """(relative path, listing info) of every file under the root."""
    root = store.path("").rstrip("/")
    try:
        found = store.fs.find(root, detail=True)
    except FileNotFoundError:
        return []
    return [
        (path[len(root) + 1 :], info)
        for path, info in found.items()
        if info.get("type", "file") == "file" and path.startswith(f"{root}/")
    ]


def plan_gc(
    store: Store,
    keep_runs: int = 1,
    tmp_grace_s: float = DEFAULT_TMP_GRACE_S,
    now: float | None = None,
) -> GcPlan:
    """What a collection of ``store`` would delete, keeping the last ``keep_runs`` catalog runs."""
    if keep_runs < 1:
        raise ValueError(f"keep_runs must be at least 1, got {keep_runs}")
    now = time.time() if now is None else now
    catalog: list[tuple[str, str]] = []
    protected: list[str] = []
    for run_id in store.list(layout.RUNS):
        if TMP_NAME.search(run_id):  # a killed write, not a run
            continue
        manifest = runs.completed(store, run_id)
        if manifest is not None and manifest.get("kind", "catalog") == "catalog":
            catalog.append((manifest.get("completed_at", ""), run_id))
        else:  # another kind, or incomplete (a re-run resumes it): keep what it references
            protected.append(run_id)
    kept = [run_id for _, run_id in sorted(catalog, reverse=True)[:keep_runs]]
    keep: set[str] = set()
    for run_id in kept + protected:
        keep |= referenced_audio(store, run_id)
    keep |= {layout.c2pa_sidecar(rel) for rel in keep}  # a sidecar stays with its audio
    audio: list[tuple[str, int]] = []
    tmp: list[tuple[str, int]] = []
    audio_kept = 0
    for rel, info in _files(store):
        size = int(info.get("size") or 0)
        if TMP_NAME.search(rel):
            if _age_s(info, now) > tmp_grace_s:
                tmp.append((rel, size))
        elif rel.startswith(f"{AUDIO_DIR}/"):
            if rel in keep:
                audio_kept += 1
            else:
                audio.append((rel, size))
    return GcPlan(kept, sorted(protected), sorted(audio), sorted(tmp), audio_kept)


def delete(store: Store, plan: GcPlan, batch: int = 500) -> None:
    """Delete what ``plan`` lists (then empty local audio folders)."""
    paths = [store.path(rel) for rel, _ in plan.audio + plan.tmp]
    for start in range(0, len(paths), batch):
        store.fs.rm(paths[start : start + batch])
    if store.is_local:
        for folder in sorted({os.path.dirname(store.path(rel)) for rel, _ in plan.audio}):
            with contextlib.suppress(OSError):  # only empty folders go
                os.rmdir(folder)


def collect_garbage(
    store: Store,
    keep_runs: int = 1,
    dry_run: bool = False,
    tmp_grace_s: float = DEFAULT_TMP_GRACE_S,
    wait_s: float | None = 0.0,
    **lease_options: Any,
) -> dict[str, Any]:
    """Plan and (unless ``dry_run``) delete under the output's lease; returns the plan's summary
    with ``deleted``. While a run holds the lease, waits up to ``wait_s`` (None: as long as it
    takes), then raises LeaseError naming the run in progress. A dry run takes no lease: it
    reports the holder, if any, as ``in_use``."""
    if not store.fs.exists(store.path("")):  # never create a lease in a mistyped location
        raise StorageError(f"no output at {store.url!r}: nothing to collect")
    if dry_run:
        plan = plan_gc(store, keep_runs, tmp_grace_s)
        current = leases.read_lease(store)
        in_use = leases.describe(current) if leases.is_live(current) else None
        return {"output": store.url, "dry_run": True, "deleted": False, "in_use": in_use} | (
            plan.summary()
        )
    with leases.output_lease(store, "gc", wait_s=wait_s, **lease_options):
        plan = plan_gc(store, keep_runs, tmp_grace_s)
        delete(store, plan)
    return {"output": store.url, "dry_run": False, "deleted": True, "in_use": None} | (
        plan.summary()
    )
