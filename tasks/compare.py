"""The comparison task: one candidate generator speaks every prompt -> its audio files and one
committed metrics Parquet under ``evaluations/<eval_id>/<label>/`` (see store/layout.py)."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.compare.evaluate import evaluate_candidate
from audio_synth_core.compare.prompts import Prompt
from audio_synth_core.config.compare import CandidateSpec
from audio_synth_core.models.registry_uri import use_registry
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.plugins.cache import cached_generator, cached_validators
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from tasks.retry import retry_on_infrastructure


def candidate_summary(label: str, table: pa.Table, wall_s: float, skipped: bool) -> dict[str, Any]:
    """Counts and the generator's identity from a candidate's metrics table."""
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
    task_run_name="evaluate-{spec.name}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=retry_on_infrastructure,
)
def evaluate_candidate_task(
    spec: ShardSpec,
    candidate_json: str,
    prompts_json: str,
    validators_json: str,
    store: Store,
    registry_uri: str | None = None,
    audio_format: str = "flac",
) -> dict[str, Any]:
    """Evaluate the candidate ``spec.name`` of evaluation ``spec.run_id`` (idempotent)."""
    start = time.perf_counter()
    eval_id, label = spec.run_id, spec.name
    part = layout.candidate_metrics(eval_id, label)
    if store.exists(part):
        return candidate_summary(label, store.read_table(part), time.perf_counter() - start, True)
    candidate = CandidateSpec.model_validate_json(candidate_json)
    if registry_uri and "model_uri" in candidate.generator.params:
        # models:/ URIs load from this registry; a worker on another machine has no env for it.
        use_registry(registry_uri)
    prompts = [Prompt(**p) for p in json.loads(prompts_json)]
    generator = cached_generator(
        candidate.generator.name, json.dumps(candidate.generator.params, sort_keys=True)
    )

    def sink(name: str, data: bytes) -> str:
        rel = layout.candidate_audio(eval_id, label, name)
        store.write_bytes(rel, data)
        return store.uri(rel)

    frame = evaluate_candidate(
        candidate,
        prompts,
        cached_validators(validators_json),
        generator=generator,
        audio_sink=sink,
        audio_format=audio_format,
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    store.write_table(part, table)
    return candidate_summary(label, table, time.perf_counter() - start, False)
