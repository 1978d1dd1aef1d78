"""Generating one shard: plan part in, audio files plus one committed metadata part out.

Runs serially inside one worker process; the caller (a Prefect task) decides the parallelism.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from audio_synth_core import audio
from audio_synth_core.generators.base import Generator, SynthesisRequest
from audio_synth_core.pipeline.planning import STATUS_PENDING
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.provenance.c2pa import C2paMaterial, sign_audio, takes_sidecar
from audio_synth_core.provenance.records import item_record
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.watermark import SCHEME_ID, WatermarkSettings
from audio_synth_core.watermark import mark as watermark_clip
from audio_synth_core.watermark.payload import payload_of


@dataclass(frozen=True)
class ShardSummary:
    """What a shard task returns: counts and seconds, never audio."""

    shard: str
    n_items: int
    n_ok: int
    n_failed: int
    n_generated: int
    n_reused: int
    audio_s: float
    generated_audio_s: float
    wall_s: float
    skipped: bool = False
    # Which process did the work: lets a run show where its shards landed.
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summary_of(
    table: pa.Table, shard: str, wall_s: float, generated: int, generated_s: float, skipped: bool
) -> ShardSummary:
    status = table.column("status").to_pylist()
    n_ok = sum(s == schema.STATUS_OK for s in status)
    durations = table.column("duration_s").to_pylist()
    return ShardSummary(
        shard=shard,
        n_items=table.num_rows,
        n_ok=n_ok,
        n_failed=table.num_rows - n_ok,
        n_generated=generated,
        n_reused=n_ok - generated if not skipped else 0,
        audio_s=float(sum(d for d in durations if d)),
        generated_audio_s=generated_s,
        wall_s=wall_s,
        skipped=skipped,
    )


def measure_item(
    row: dict[str, Any], samples: np.ndarray, rate: int
) -> tuple[dict[str, Any], bytes]:
    """Encode and measure one clip; returns the completed metadata row and the file bytes."""
    if samples.size == 0 or not np.isfinite(samples).all():
        raise ValueError("generator returned empty or non-finite audio")
    data = audio.encode(samples, rate, row["audio_format"])
    return {
        **row,
        **audio.levels(samples, rate).as_dict(),
        "sample_rate_hz": rate,
        "num_samples": len(samples),
        "duration_s": len(samples) / rate,
        "sha256": hashlib.sha256(data).hexdigest(),
        "status": schema.STATUS_OK,
        "error": None,
    }, data


def signed_item(
    row: dict[str, Any], data: bytes, material: C2paMaterial
) -> tuple[dict[str, Any], bytes, bytes | None]:
    """A measured item with its C2PA manifest: (row, audio bytes to store, sidecar or None).
    The manifest carries the item's provenance record as measured; a WAV's embedded manifest is
    new bytes, so its row's ``sha256`` (and record) then describe the file as stored."""
    record = json.loads(item_record(row))
    name = layout.audio(row["id"], row["audio_format"]).rsplit("/", 1)[-1]
    stored, sidecar = sign_audio(data, row["audio_format"], record, material, name)
    if stored is not data:
        row = {**row, "sha256": hashlib.sha256(stored).hexdigest()}
    return row, stored, sidecar


def _kept(store: Store, rel: str, c2pa: C2paMaterial | None) -> bool:
    """An unchanged item's files are all still there (its audio; with C2PA, a FLAC's sidecar)."""
    if not store.exists(rel):
        return False
    return c2pa is None or not takes_sidecar(rel) or store.exists(layout.c2pa_sidecar(rel))


def generate_shard(
    spec: ShardSpec,
    store: Store,
    generator: Generator,
    batch_size: int = 32,
    watermark: WatermarkSettings | None = None,
    c2pa: C2paMaterial | None = None,
) -> ShardSummary:
    """Generate every pending item of a shard and commit its metadata part (idempotent).
    With ``watermark`` every clip is marked with its item's payload before it is measured; with
    ``c2pa`` every file gets a C2PA manifest (WAV embedded, FLAC a sidecar written with it)."""
    start = time.perf_counter()
    out_rel = layout.items_part(spec.run_id, spec.name)
    if store.exists(out_rel):
        return _summary_of(
            store.read_table(out_rel), spec.name, time.perf_counter() - start, 0, 0.0, True
        )
    rows = store.read_table(layout.plan_part(spec.run_id, spec.name)).to_pylist()
    for row in rows:
        row["run_id"] = spec.run_id
        # An unchanged item keeps its audio unless the file (or its sidecar) went missing since.
        if row["status"] == schema.STATUS_OK:
            rel = layout.audio(row["id"], row["audio_format"])
            if _kept(store, rel, c2pa):
                # Carried from the previous run, maybe at another root: point at this one.
                row.update(audio_path=rel, audio_uri=store.uri(rel))
            else:
                row["status"] = STATUS_PENDING
    pending = [r for r in rows if r["status"] == STATUS_PENDING]
    with _Writer(store) as writer:
        generated, generated_s = _generate_pending(
            pending, store, generator, batch_size, writer, watermark, c2pa
        )
    table = pa.Table.from_pylist(rows, schema=schema.ITEM_SCHEMA)
    store.write_table(out_rel, table)
    return _summary_of(table, spec.name, time.perf_counter() - start, generated, generated_s, False)


# Files being written at once: enough to hide an object store's per-PUT latency behind synthesis,
# few enough that a shard never holds more than a handful of clips' bytes.
WRITE_THREADS = 4
MAX_PENDING_WRITES = 16


class _Writer:
    """Writes audio files on a few threads while the next clips are synthesized (the engine and
    libsndfile release the GIL). The first storage error is raised again from ``write`` or on exit,
    so the shard fails (and its task is retried) rather than committing rows for missing files."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="audio-write")
        self._pending: deque[Future[None]] = deque()

    def write(self, rel: str, data: bytes) -> None:
        while len(self._pending) >= MAX_PENDING_WRITES:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._store.write_bytes, rel, data))

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            # Already failing: drop the queued writes, and never mask that first error.
            while self._pending and exc_type is None:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)


@functools.lru_cache(maxsize=1024)
def _overrides(row_params: str, generator_params: str) -> dict[str, Any]:
    mine, base = json.loads(row_params), json.loads(generator_params)
    return {k: v for k, v in mine.items() if base.get(k) != v}


def item_params(row: dict[str, Any], generator: Generator) -> dict[str, Any]:
    """The parameters an item's plan gives beyond its generator's (a dataset's synthetic speaker:
    pitch, rate): sent with its request. Only those the generator can vary per request."""
    if not row.get("generator_params"):
        return {}
    base = json.dumps(generator.params, sort_keys=True)
    overrides = _overrides(row["generator_params"], base)
    unsupported = sorted(set(overrides) - generator.per_request_params)
    if unsupported:
        raise ValueError(
            f"generator {generator.name!r} cannot vary {unsupported} per item "
            f"(it can vary: {sorted(generator.per_request_params) or 'nothing'})"
        )
    return overrides


def _stamp(row: dict[str, Any], watermark: WatermarkSettings | None) -> dict[str, Any]:
    """The row with its creation time and, when marked, its payload and the mark's scheme."""
    out = {**row, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if watermark is not None:
        out |= {"watermark_payload": payload_of(row["id"]), "watermark_scheme": SCHEME_ID}
    return out


def _marked(
    samples: np.ndarray,
    row: dict[str, Any],
    generator: Generator,
    watermark: WatermarkSettings | None,
) -> np.ndarray:
    """The clip with its item's watermark (before measuring and encoding: levels and sha256
    describe the file as delivered)."""
    if watermark is None or samples.size == 0 or not np.isfinite(samples).all():
        return samples  # measure_item rejects empty or non-finite audio with its own reason
    return watermark_clip(samples, generator.sample_rate_hz, watermark, row["id"])[0]


def _generate_pending(
    pending: list[dict[str, Any]],
    store: Store,
    generator: Generator,
    batch_size: int,
    writer: _Writer,
    watermark: WatermarkSettings | None = None,
    c2pa: C2paMaterial | None = None,
) -> tuple[int, float]:
    """Synthesize, measure and write every pending row (updated in place); (count, audio s)."""
    generated, generated_s = 0, 0.0
    for begin in range(0, len(pending), batch_size):
        batch, requests = [], []
        for r in pending[begin : begin + batch_size]:
            try:
                params = item_params(r, generator)
            except ValueError as exc:  # a bad item is a recorded failure, never a lost shard
                r.update(status=schema.STATUS_FAILED, error=f"ValueError: {exc}")
                continue
            batch.append(r)
            requests.append(
                SynthesisRequest(r["text"], r["voice"], r["language"], r["seed"], params)
            )
        results = generator.generate(requests) if requests else []
        for row, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                row.update(status=schema.STATUS_FAILED, error=f"{type(result).__name__}: {result}")
                continue
            try:
                done, data = measure_item(
                    _stamp(row, watermark),
                    _marked(result, row, generator, watermark),
                    generator.sample_rate_hz,
                )
                sidecar = None
                if c2pa is not None:  # before any write: a failed manifest writes nothing
                    done, data, sidecar = signed_item(done, data, c2pa)
                done["provenance"] = item_record(done)
            except Exception as exc:  # one bad clip is a recorded failure, not a lost shard
                row.update(status=schema.STATUS_FAILED, error=f"{type(exc).__name__}: {exc}")
                continue
            # Storage errors propagate: the task is retried rather than committing a false failure.
            rel = layout.audio(row["id"], row["audio_format"])
            writer.write(rel, data)
            if sidecar is not None:  # both land before the shard's part commits them
                writer.write(layout.c2pa_sidecar(rel), sidecar)
            row.update(done, audio_uri=store.uri(rel), audio_path=rel)
            generated += 1
            generated_s += done["duration_s"]
    return generated, generated_s
