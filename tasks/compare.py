"""The comparison task: one candidate generator speaks every prompt -> its audio files and one
committed metrics Parquet under ``compare/<run_id>/<label>/``."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.compare.comparison import CandidateSpec, Prompt, evaluate_candidate
from audio_synth_core.plugins.cache import cached_generator, cached_validators
from audio_synth_core.store.storage import Store
from flows import tracking


def candidate_dir(run_id: str, label: str) -> str:
    return f"compare/{run_id}/{label}"


def metrics_part(run_id: str, label: str) -> str:
    """Written last: a candidate is done exactly when this file exists."""
    return f"{candidate_dir(run_id, label)}/metrics.parquet"


def _summary(label: str, table: pa.Table, wall_s: float, skipped: bool) -> dict[str, Any]:
    rows = table.select(
        [
            c
            for c in ("status", "passed", "generator", "generator_version", "generator_params")
            if c in table.column_names
        ]
    ).to_pylist()
    first = rows[0] if rows else {}
    return {
        "label": label,
        "n_items": len(rows),
        "n_ok": sum(r.get("status") == "ok" for r in rows),
        "n_passed": sum(bool(r.get("passed")) for r in rows),
        "generator": first.get("generator"),
        "generator_version": first.get("generator_version"),
        "generator_params": json.loads(first.get("generator_params") or "{}"),
        "wall_s": wall_s,
        "skipped": skipped,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


# Results stay in memory (a small dict); the metrics Parquet on storage is the cache.
@task(
    name="evaluate-candidate",
    task_run_name="evaluate-{label}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
def evaluate_candidate_task(
    run_id: str,
    label: str,
    candidate_json: str,
    prompts_json: str,
    validators_json: str,
    store: Store,
    tracking_uri: str | None = None,
    audio_format: str = "flac",
) -> dict[str, Any]:
    start = time.perf_counter()
    part = metrics_part(run_id, label)
    if store.exists(part):
        return _summary(label, store.read_table(part), time.perf_counter() - start, True)
    spec = CandidateSpec.model_validate_json(candidate_json)
    if tracking_uri and "model_uri" in spec.generator.params:
        # models:/ URIs load from this registry; a worker on another machine has no env for it.
        tracking.set_uri(tracking_uri)
    prompts = [Prompt(**p) for p in json.loads(prompts_json)]
    generator = cached_generator(
        spec.generator.name, json.dumps(spec.generator.params, sort_keys=True)
    )
    folder = f"{candidate_dir(run_id, label)}/audio"

    def sink(name: str, data: bytes) -> str:
        store.write_bytes(f"{folder}/{name}", data)
        return store.uri(f"{folder}/{name}")

    frame = evaluate_candidate(
        spec,
        prompts,
        cached_validators(validators_json),
        generator=generator,
        audio_sink=sink,
        audio_format=audio_format,
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    store.write_table(part, table)
    return _summary(label, table, time.perf_counter() - start, False)
