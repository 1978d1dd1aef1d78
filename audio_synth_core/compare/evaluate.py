"""One candidate speaks every prompt and each clip is validated like any pipeline item.

The per-item work is the pipeline's own: ``measure_item`` encodes the clip (and refuses empty or
non-finite audio), ``validate_row`` measures and checks the encoded file. Serial and
deterministic; the caller (a Prefect task per candidate) decides the parallelism.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from audio_synth_core.assessment.fairness import passed_flags
from audio_synth_core.compare.prompts import Prompt
from audio_synth_core.config.compare import CandidateSpec, CompareConfig
from audio_synth_core.errors import UnknownVoiceError
from audio_synth_core.generators.base import Generator, SynthesisRequest, build_generator
from audio_synth_core.pipeline.generate import measure_item
from audio_synth_core.pipeline.validate import validate_row
from audio_synth_core.store import ids, schema
from audio_synth_core.validators.base import ValidationContext, Validator


def pin_candidate(spec: CandidateSpec) -> CandidateSpec:
    """The candidate with an aliased ``models:/name@alias`` replaced by the version it names now,
    so every worker uses the same model even if the alias moves during the run."""
    uri = spec.generator.params.get("model_uri")
    if not (isinstance(uri, str) and uri.startswith("models:/") and "@" in uri):
        return spec
    from audio_synth_core.models.registry import resolve_model_uri

    concrete, _ = resolve_model_uri(uri)
    generator = spec.generator.model_copy(
        update={"params": {**spec.generator.params, "model_uri": concrete}}
    )
    return spec.model_copy(update={"generator": generator})


def evaluation_id(
    cfg: CompareConfig,
    prompts: Sequence[Prompt],
    pinned: Sequence[CandidateSpec],
    validators_json: str,
) -> str:
    """Id of the candidates' outputs: a hash of what determines them (prompts, pinned generator
    configurations, validators, format), so a re-run reuses them and a moved alias does not.
    Runs that differ only in their decision rule share one evaluation."""
    key = {
        "prompts": [[p.id, p.text, p.language, dict(p.attributes)] for p in prompts],
        "candidates": [c.model_dump(mode="json") for c in pinned],
        "validators": json.loads(validators_json),
        "audio_format": cfg.audio_format,
    }
    return ids.run_id(cfg.name, ids.digest(key))


def _failed_row(base: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        **base,
        "status": schema.STATUS_FAILED,
        "error": reason,
        "passed": False,
        "failed_checks": "generation",
    }


def evaluate_candidate(
    spec: CandidateSpec,
    prompts: Sequence[Prompt],
    validators: Sequence[Validator],
    *,
    generator: Generator | None = None,
    audio_sink: Callable[[str, bytes], str] | None = None,
    audio_format: str = "flac",
    batch_size: int = 16,
) -> pd.DataFrame:
    """One row per prompt: the candidate's audio validated like any item (metrics, ``passed``,
    ``failed_checks``). A prompt it cannot synthesize is a failed row with its error, never a
    crash. ``audio_sink(name, data)`` stores each file and returns its URI (``audio_uri``)."""
    gen = generator or build_generator(spec.generator.name, spec.generator.params)
    described = gen.describe()
    context = ValidationContext(texts=[p.text for p in prompts])
    for v in validators:
        # e.g. the ASR language model of exactly these prompts: the same for every candidate.
        v.prepare(context)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        bases, requests, todo = [], [], []
        for p in batch:
            base = {
                "prompt_id": p.id,
                "text": p.text,
                "language": p.language,
                "attributes": json.dumps(dict(p.attributes), sort_keys=True),
                "candidate": spec.label,
                "generator": described["name"],
                "generator_version": described["version"],
                "generator_params": json.dumps(described["params"], sort_keys=True, default=str),
                "seed": p.seed,
                "voice": None,
                "audio_uri": None,
            }
            bases.append(base)
            try:
                base["voice"] = gen.resolve_voice(spec.voice, p.language).name
            except UnknownVoiceError as exc:
                base.update(_failed_row(base, str(exc)))
                continue
            todo.append(len(bases) - 1)
            requests.append(SynthesisRequest(p.text, base["voice"], p.language, p.seed))
        try:
            outputs: list[Any] = gen.generate(requests) if requests else []
        except Exception as exc:  # a generator crash fails this batch's prompts, recorded
            outputs = [exc] * len(requests)
        for i, out in zip(todo, outputs, strict=True):
            bases[i].update(_measured(bases[i], out, gen, validators, audio_sink, audio_format))
        rows.extend(bases)
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        return pd.DataFrame(columns=["prompt_id", "candidate", "status", "passed"])
    frame["passed"] = passed_flags(frame["passed"])
    return frame


def _measured(
    base: dict[str, Any],
    out: Any,
    gen: Generator,
    validators: Sequence[Validator],
    audio_sink: Callable[[str, bytes], str] | None,
    audio_format: str,
) -> dict[str, Any]:
    """One generator output -> its stored file and the row's status, metrics and verdict."""
    if isinstance(out, Exception):
        return _failed_row(base, f"{type(out).__name__}: {out}")
    try:
        samples = np.asarray(out, dtype=np.float32)
        done, data = measure_item({"audio_format": audio_format}, samples, gen.sample_rate_hz)
    except Exception as exc:  # one bad clip is a recorded failure, as in generate_shard
        return _failed_row(base, f"{type(exc).__name__}: {exc}")
    uri = audio_sink(f"{base['prompt_id']}.{audio_format}", data) if audio_sink else None
    row = {k: base[k] for k in ("text", "language", "attributes")} | {"id": base["prompt_id"]}
    validated = validate_row(row, data, validators)
    validated.pop("id")
    # Only the status comes from measure_item: its level columns are the quality validator's to
    # report (measured on the decoded file), so the columns depend on the configured validators.
    return {"audio_uri": uri, "status": done["status"], "error": done["error"], **validated}
