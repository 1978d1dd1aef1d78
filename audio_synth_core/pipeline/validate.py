"""Validating one shard: committed item metadata + audio in, one metrics part out.

Every validator measures every decodable clip; its metrics become columns (units in the field
metadata), its failed checks set ``passed`` = False and are named in ``failed_checks``. An item that
cannot be read (missing_audio, unreadable: a symlink loop, a directory, a FIFO, permission denied)
or decoded (decode), or that a validator crashes on, is a recorded failure naming the file, never a
lost shard; only errors a retry may cure (a reset connection, a timeout, a 5xx) fail the shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from audio_synth_core import audio
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.store import layout, schema
from audio_synth_core.store.audio_files import UnreadableAudio, read_audio
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import (
    Clip,
    ValidationContext,
    Validator,
)

BASE_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("passed", pa.bool_(), metadata={"description": "every check passed"}),
    pa.field("failed_checks", pa.string(), metadata={"description": "comma-separated check names"}),
    pa.field("check_messages", pa.string(), metadata={"description": "JSON list of failed checks"}),
    pa.field(
        "validation_error",
        pa.string(),
        metadata={"description": "why the item could not be validated"},
    ),
    pa.field(
        "quarantined",
        pa.bool_(),
        metadata={"description": "audio moved out of the deliverable output"},
    ),
    # Measured from the decoded file; they fill in what imported metadata lacks.
    *(
        schema.ITEM_SCHEMA.field(n).with_nullable(True)
        for n in ("status", "error", "sample_rate_hz", "num_samples", "duration_s", "sha256")
    ),
]


def validation_schema(validators: Sequence[Validator]) -> pa.Schema:
    """Base columns plus every validator's metric columns (first definition of a name wins)."""
    fields = list(BASE_FIELDS)
    names = {f.name for f in fields}
    for v in validators:
        for metric in v.fields:
            if metric.name not in names:
                names.add(metric.name)
                fields.append(metric.to_arrow())
    return pa.schema(
        fields, metadata={"audio_synth.schema": "validation", "audio_synth.schema_version": "1"}
    )


@dataclass(frozen=True)
class ValidationSummary:
    shard: str
    n_items: int
    n_passed: int
    n_quarantined: int
    wall_s: float
    skipped: bool = False
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _attributes(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        attrs = json.loads(row.get("attributes") or "{}")
    except json.JSONDecodeError:
        attrs = {}
    if row.get("language"):
        attrs.setdefault("language", row["language"])
    return attrs


def unusable(item_id: str, check: str, reason: str) -> dict[str, Any]:
    """The validation row of an item whose audio cannot be used at all."""
    return {
        "id": item_id,
        "passed": False,
        "failed_checks": check,
        "validation_error": reason,
        "quarantined": False,
        "status": schema.STATUS_FAILED,
        "error": reason,
    }


# Clips measured together (``Validator.measure_many``): large enough for batched models, small
# enough that a shard's decoded audio is never all in memory at once.
BATCH_ITEMS = 32


def validate_row(
    row: Mapping[str, Any],
    data: bytes,
    validators: Sequence[Validator],
    source: str | None = None,
) -> dict[str, Any]:
    """Metrics, checks and pass/fail of one item whose audio bytes are ``data`` (read from
    ``source``, which a decode error names)."""
    return validate_rows([(row, data, source)], validators)[0]


def validate_rows(
    items: Sequence[tuple[Mapping[str, Any], bytes, str | None]],
    validators: Sequence[Validator],
) -> list[dict[str, Any]]:
    """``validate_row`` of each (row, audio bytes, source), each validator measuring all the
    decodable clips in one ``measure_many`` call; one item's error never touches another."""
    out: list[dict[str, Any]] = []
    clips: list[tuple[int, Clip, bytes]] = []
    for row, data, source in items:
        source = source or row.get("audio_uri") or row["id"]
        try:
            samples, rate = audio.decode(data, source)
        except audio.AudioDecodeError as exc:
            out.append(unusable(row["id"], "decode", f"unreadable audio: {exc}"))
            continue
        except Exception as exc:  # anything else soundfile raises on corrupt input, still named
            reason = f"unreadable audio: cannot decode {source}: {type(exc).__name__}: {exc}"
            out.append(unusable(row["id"], "decode", reason))
            continue
        clips.append(
            (len(out), Clip(row["id"], samples, rate, row.get("text"), _attributes(row)), data)
        )
        out.append({})
    measured: list[list[dict[str, Any] | Exception]] = []
    for v in validators:
        try:
            results = v.measure_many([clip for _, clip, _ in clips])
            if len(results) != len(clips):
                raise RuntimeError(
                    f"measure_many returned {len(results)} results for {len(clips)} clips"
                )
        except Exception as exc:  # a batch-level bug is each of its items' recorded error
            results = [exc] * len(clips)
        measured.append(results)
    for j, (i, clip, data) in enumerate(clips):
        out[i] = _checked(clip, data, validators, [results[j] for results in measured])
    return out


def _checked(
    clip: Clip,
    data: bytes,
    validators: Sequence[Validator],
    measured: Sequence[dict[str, Any] | Exception],
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": clip.id, "quarantined": False}
    metrics: dict[str, Any] = {}
    failures: list[dict[str, Any]] = []
    errors: list[str] = []
    for v, result in zip(validators, measured, strict=True):
        try:
            if isinstance(result, Exception):
                raise result
            metrics.update(result)
            failures.extend(asdict(c) for c in v.check(result))
            out["quarantined"] = out["quarantined"] or v.quarantine(result)
        except Exception as exc:  # a validator bug is this item's recorded error, not a lost shard
            errors.append(f"{v.name}: {type(exc).__name__}: {exc}")
            failures.append(
                {"check": f"{v.name}.error", "value": None, "limit": None, "message": str(exc)}
            )
    names = sorted({f["check"] for f in failures})
    samples, rate = clip.audio, clip.sample_rate_hz
    return {
        **metrics,
        **out,
        "sample_rate_hz": rate,
        "num_samples": len(samples),
        "duration_s": len(samples) / rate,
        "sha256": hashlib.sha256(data).hexdigest(),
        "passed": not failures,
        "failed_checks": ",".join(names) or None,
        "check_messages": json.dumps(failures, default=str) if failures else None,
        "validation_error": "; ".join(errors) or None,
    }


def _quarantine(store: Store, row: Mapping[str, Any]) -> None:
    """Move our own audio file under quarantine/ (with its C2PA sidecar, if any); audio outside
    the output is only flagged."""
    rel = layout.audio(row["id"], row["audio_format"] or "flac")
    own = row.get("audio_path") == rel or row.get("audio_uri") == store.uri(rel)
    if own and store.exists(rel):
        store.move(rel, layout.quarantine(rel))
        sidecar = layout.c2pa_sidecar(rel)
        if store.exists(sidecar):
            store.move(sidecar, layout.quarantine(sidecar))


def validate_shard(
    spec: ShardSpec,
    store: Store,
    validators: Sequence[Validator],
    audio_storage_options: Mapping[str, Any] | None = None,
) -> ValidationSummary:
    """Validate the committed items of one shard and commit its validation part (idempotent)."""
    start = time.perf_counter()
    run_id, shard_name = spec.run_id, spec.name
    out_rel = layout.validation_part(run_id, shard_name)
    if store.exists(out_rel):
        table = store.read_table(out_rel)
        passed = sum(bool(p) for p in table.column("passed").to_pylist())
        return ValidationSummary(
            shard_name, table.num_rows, passed, 0, time.perf_counter() - start, True
        )
    rows = store.read_table(layout.items_part(run_id, shard_name)).to_pylist()
    context = ValidationContext(
        texts=[r["text"] for r in rows if r.get("text") and r["status"] == schema.STATUS_OK]
    )
    for v in validators:
        v.prepare(context)
    results: list[dict[str, Any]] = []
    batch: list[tuple[Mapping[str, Any], bytes, str | None]] = []

    def flush() -> None:
        for row, result in zip(
            [r for r, _, _ in batch], validate_rows(batch, validators), strict=True
        ):
            if result["quarantined"]:
                _quarantine(store, row)
            results.append(result)
        batch.clear()

    for row in rows:
        if row["status"] != schema.STATUS_OK:
            flush()  # rows stay in the items' order
            results.append(
                {
                    "id": row["id"],
                    "passed": False,
                    "failed_checks": "generation",
                    "validation_error": row.get("error"),
                    "quarantined": False,
                }
            )
            continue
        # Our own audio resolves under this output's root (it may have been moved) and is read
        # with its credentials; imported audio keeps its absolute URL and the input's options.
        where = runs.audio_location(store, row)
        options = store.storage_options if row.get("audio_path") else audio_storage_options
        try:
            data = read_audio(where, options)
        except UnreadableAudio as exc:  # this file's failed row; the shard goes on
            flush()
            results.append(unusable(row["id"], exc.check, exc.reason))
            continue
        batch.append((row, data, where))
        if len(batch) >= BATCH_ITEMS:
            flush()
    flush()
    table = pa.Table.from_pylist(results, schema=validation_schema(validators))
    store.write_table(out_rel, table)
    n_passed = sum(bool(r["passed"]) for r in results)
    n_quarantined = sum(bool(r.get("quarantined")) for r in results)
    return ValidationSummary(
        shard_name, len(rows), n_passed, n_quarantined, time.perf_counter() - start
    )
