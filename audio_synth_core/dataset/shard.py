"""Making one dataset shard: the shard's generated (and validated) clean clips in, its dataset
items out: silence clips made from seeded noise, augmented copies of every clean clip written as
content-addressed audio, and one committed dataset part (the shard's done marker).

Runs serially in one worker process; the Prefect task wraps exactly this. Idempotent: a shard whose
dataset part exists is skipped, and every audio file is named by its content id, so a re-run writes
the same bytes under the same names.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from audio_synth_core import audio
from audio_synth_core.dataset.augment import (
    AugmentationSpec,
    apply_augmentation,
    augmented_id,
    plan_augmentation,
)
from audio_synth_core.dataset.noises import colored_noise
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.store import ids, layout, schema
from audio_synth_core.store.storage import Store

_BETAS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Clean-clip metrics carried onto every dataset item (what the quality filter reads).
METRICS = ("wer", "snr_db", "mos_ovrl")


def _f(name: str, typ: pa.DataType, description: str, unit: str = "") -> pa.Field:
    meta = {"description": description, **({"unit": unit} if unit else {})}
    return pa.field(name, typ, metadata=meta)


DATASET_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        _f("row_id", pa.string(), "planned dataset row this item comes from"),
        _f("clean_id", pa.string(), "id of the clean clip (before augmentation)"),
        _f("kind", pa.string(), "speech or silence"),
        _f("split", pa.string(), "train, dev or test"),
        _f("text", pa.string(), "text spoken (empty for silence)"),
        _f("label", pa.string(), "class label (keyword spotting) or normalized text"),
        _f("source", pa.string(), "text source name"),
        _f("source_id", pa.string(), "source document the text came from"),
        _f("speaker_id", pa.string(), "synthetic speaker (null for silence)"),
        _f("voice", pa.string(), "generator voice of the speaker"),
        _f("language", pa.string(), "language code"),
        _f("gender", pa.string(), "speaker gender"),
        _f("age_band", pa.string(), "speaker age band"),
        _f("accent", pa.string(), "speaker accent"),
        _f("generator_params", pa.string(), "generator parameters of the speaker (JSON)"),
        _f("augmented", pa.bool_(), "an augmented copy (false: the clean clip)"),
        _f("augmentation", pa.string(), "exact augmentation parameters (JSON; null when clean)"),
        _f("sample_rate_hz", pa.int32(), "sample rate", "Hz"),
        _f("num_samples", pa.int64(), "length", "samples"),
        _f("duration_s", pa.float64(), "length", "s"),
        _f("audio_path", pa.string(), "audio path relative to the output root"),
        _f("clean_audio_path", pa.string(), "the clean clip's audio path (relative)"),
        _f("audio_format", pa.string(), "flac or wav"),
        _f("sha256", pa.string(), "sha256 of the audio bytes"),
        _f("status", pa.string(), "ok or failed"),
        _f("error", pa.string(), "why the item failed"),
        _f("wer", pa.float64(), "clean clip: ASR word error rate against its text", "ratio"),
        _f("snr_db", pa.float64(), "clean clip: blind SNR (WADA)", "dB"),
        _f("mos_ovrl", pa.float64(), "clean clip: DNSMOS overall"),
        _f("speaker_embedding", pa.list_(pa.float32()), "clean clip: speaker d-vector"),
        _f("run_id", pa.string(), "run that made this item"),
    ],
    metadata={"audio_synth.schema": "dataset_items", "audio_synth.schema_version": "1"},
)


@dataclass(frozen=True)
class DatasetJob:
    """What every dataset shard is made with (small; travels to the workers)."""

    audio_format: str
    sample_rate_hz: int
    augmentation: AugmentationSpec | None = None
    silence: dict[str, dict[str, Any]] = field(default_factory=dict)  # source -> duration/levels
    embed_speakers: bool = False
    storage_options: dict[str, Any] = field(default_factory=dict)  # for a noise folder


def silence_clip(row: dict[str, Any], settings: dict[str, Any], rate: int) -> np.ndarray:
    """A low-level noise clip for a ``silence`` item, deterministic from the item's seed."""
    rng = np.random.default_rng(ids.seed_of(row["seed"], "silence"))
    kind = settings["noise_types"][int(rng.integers(len(settings["noise_types"])))]
    low, high = settings["level_dbfs"]
    level = float(rng.uniform(low, high))
    n = round(settings["duration_s"] * rate)
    noise = colored_noise(n, rate, _BETAS[kind], ids.seed_of(row["seed"], "noise"))
    return (noise * 10 ** (level / 20)).astype(np.float32)


def _item(row: dict[str, Any], **values: Any) -> dict[str, Any]:
    base = {f.name: row.get(f.name) for f in DATASET_SCHEMA}
    base["source_id"] = row.get("source_doc") or row.get("source")
    base["row_id"] = row["id"]
    return {**base, **values}


def _measured(samples: np.ndarray, rate: int, fmt: str) -> tuple[dict[str, Any], bytes]:
    data = audio.encode(samples, rate, fmt)
    return {
        "sample_rate_hz": rate,
        "num_samples": int(samples.size),
        "duration_s": samples.size / rate,
        "audio_format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "status": schema.STATUS_OK,
        "error": None,
    }, data


def _clean_audio(
    row: dict[str, Any], made: dict[str, dict[str, Any]], store: Store, job: DatasetJob
) -> tuple[np.ndarray | None, str | None, int]:
    """(samples, error, rate) of a row's clean clip; silence clips are made and written here."""
    if row["kind"] == "silence":
        rate = job.sample_rate_hz
        data = audio.encode(
            silence_clip(row, job.silence[row["source"]], rate), rate, job.audio_format
        )
        rel = layout.dataset_audio(row["clean_id"], job.audio_format)
        if not store.exists(rel):
            store.write_bytes(rel, data)
        # Augment what is stored (16-bit), as for speech: a copy is reproducible from the file.
        samples, rate = audio.decode(data, rel)
        return samples.astype(np.float32), None, rate
    item = made.get(row["clean_id"])
    if item is None:
        return None, "clean clip missing from the generated items", 0
    if item["status"] != schema.STATUS_OK:
        return None, item.get("error") or "generation failed", 0
    try:
        samples, rate = audio.decode(store.read_bytes(item["audio_path"]), item["audio_path"])
    except audio.AudioDecodeError as exc:
        return None, f"decode: {exc}", 0
    return samples.astype(np.float32), None, rate


def _embeddings(clips: dict[str, tuple[np.ndarray, int]]) -> dict[str, list[float]]:
    """Speaker d-vectors of the clean speech clips (resemblyzer); clips without speech get none."""
    from audio_synth_core.privacy import speaker

    speaker.configure_threads(1)
    out: dict[str, list[float]] = {}
    for clean_id, (samples, rate) in clips.items():
        try:
            out[clean_id] = speaker.embed(samples, rate).astype(np.float32).tolist()
        except speaker.SpeakerEmbeddingError:
            continue
    return out


def make_dataset_shard(spec: ShardSpec, store: Store, job: DatasetJob) -> dict[str, Any]:
    """Make every dataset item of one shard and commit its dataset part; a summary dict."""
    start = time.perf_counter()
    out_rel = layout.dataset_part(spec.run_id, spec.name)
    if store.exists(out_rel):
        table = store.read_table(out_rel)
        return {"shard": spec.name, "items": table.num_rows, "skipped": True, "wall_s": 0.0}
    rows = store.read_table(layout.dataset_plan_part(spec.run_id, spec.name)).to_pylist()
    made: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    if spec.n_items:
        made = {
            r["id"]: r
            for r in store.read_table(layout.items_part(spec.run_id, spec.name)).to_pylist()
        }
        val_rel = layout.validation_part(spec.run_id, spec.name)
        if store.exists(val_rel):
            val = store.read_table(val_rel)
            keep = [c for c in ("id", *METRICS) if c in val.column_names]
            metrics = {r["id"]: r for r in val.select(keep).to_pylist()}
    clean: dict[str, tuple[np.ndarray | None, str | None, int]] = {}
    for row in rows:
        if row["clean_id"] not in clean:
            clean[row["clean_id"]] = _clean_audio(row, made, store, job)
    embeddings = {}
    if job.embed_speakers:
        speech = {c: (s, r) for c, (s, e, r) in clean.items() if s is not None and c in made}
        embeddings = _embeddings(speech)
    aug = job.augmentation
    copies = aug.copies if aug is not None else 0
    keep_clean = aug.keep_clean if aug is not None else True
    out: list[dict[str, Any]] = []
    for row in rows:
        samples, error, rate = clean[row["clean_id"]]
        m = metrics.get(row["clean_id"], {})
        clean_rel = _clean_path(row, made, job)
        common = {
            "run_id": spec.run_id,
            "clean_audio_path": clean_rel,
            "speaker_embedding": embeddings.get(row["clean_id"]),
            **{k: m.get(k) for k in METRICS},
        }
        if samples is None:
            out.append(_item(row, **common, id=row["id"], augmented=False,
                             status=schema.STATUS_FAILED, error=error))  # fmt: skip
            continue
        if keep_clean and (copies == 0 or not _is_repeat(row)):
            done, _ = _measured(samples, rate, job.audio_format)
            if row["clean_id"] in made:  # the file as stored (a WAV may embed a C2PA manifest)
                done["sha256"] = made[row["clean_id"]]["sha256"]
            out.append(
                _item(row, **common, **done, id=row["id"], augmented=False, audio_path=clean_rel)
            )
        for copy in range(copies):
            params = plan_augmentation(aug, row["id"], copy, row["seed"])
            try:
                noisy = apply_augmentation(samples, rate, params, job.storage_options)
                item_id = augmented_id(row["id"], params)
                done, data = _measured(noisy, rate, job.audio_format)
            except Exception as exc:  # one clip the chain cannot process is a recorded failure
                out.append(_item(row, **common, id=ids.content_id(row["id"], copy),
                                 augmented=True, augmentation=json.dumps(params, sort_keys=True),
                                 status=schema.STATUS_FAILED, error=f"{type(exc).__name__}: {exc}"))  # fmt: skip
                continue
            rel = layout.dataset_audio(item_id, job.audio_format)
            if not store.exists(rel):
                store.write_bytes(rel, data)
            out.append(
                _item(row, **common, **done, id=item_id, augmented=True, audio_path=rel,
                      augmentation=json.dumps(params, sort_keys=True))
            )  # fmt: skip
    table = pa.Table.from_pylist(out, schema=DATASET_SCHEMA)
    store.write_table(out_rel, table)
    ok = sum(r["status"] == schema.STATUS_OK for r in out)
    return {
        "shard": spec.name,
        "items": len(out),
        "ok": ok,
        "failed": len(out) - ok,
        "skipped": False,
        "wall_s": time.perf_counter() - start,
    }


def _clean_path(
    row: dict[str, Any], made: dict[str, dict[str, Any]], job: DatasetJob
) -> str | None:
    if row["kind"] == "silence":
        return layout.dataset_audio(row["clean_id"], job.audio_format)
    item = made.get(row["clean_id"])
    return item.get("audio_path") if item else None


def _is_repeat(row: dict[str, Any]) -> bool:
    """A later use of a clean clip already in the dataset (a speaker saying a text again): only
    its augmented copies are new."""
    return int(row.get("occurrence") or 0) > 0
