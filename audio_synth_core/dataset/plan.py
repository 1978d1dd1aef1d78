"""Planning a dataset run: spec -> sources x synthetic speakers -> balanced, split items -> shards.

Two tables come out. ``rows`` is the dataset plan: one row per dataset item (speech and silence),
with its split, speaker, source, document, label, group attributes and the shard that makes it.
``items`` is the generation plan in the item schema (``store/schema.ITEM_SCHEMA``): one row per
distinct clean clip (a text spoken by a synthetic speaker), whose ``generator_params`` carry the
speaker's pitch and rate, generated and validated like a catalog's items. Dataset items that speak
the same text with the same speaker share one clean clip and differ in their augmentation.

The allocation is ``balance.py``'s (stated there); splits are ``splits.py``'s. The plan report
(target vs planned share per group) is computed here, before anything is generated.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from audio_synth_core.config.dataset import ATTRIBUTES, DatasetSpec
from audio_synth_core.dataset import balance, splits
from audio_synth_core.dataset.speakers import SyntheticSpeaker, build_speakers
from audio_synth_core.dataset.texts import SourceTexts, estimated_duration_s, load_sources
from audio_synth_core.errors import ConfigError
from audio_synth_core.generators.base import Generator
from audio_synth_core.pipeline.planning import STATUS_PENDING, shard_size
from audio_synth_core.pipeline.runs import ShardSpec, make_shards
from audio_synth_core.store import ids, schema
from audio_synth_core.store.storage import Store
from audio_synth_core.voices.personas import PersonaChoices

KIND_SPEECH = "speech"
KIND_SILENCE = "silence"
# Bump when planning logic that decides ids changes.
PLANNER_VERSION = 1

ROW_COLUMNS = (
    "id", "clean_id", "kind", "split", "text", "label", "source", "source_doc", "speaker_id",
    "voice", "language", "gender", "age_band", "accent", "seed", "occurrence", "shard",
    "generator_params",
)  # fmt: skip


@dataclass(frozen=True)
class DatasetPlan:
    run_id: str
    rows: pd.DataFrame  # the dataset plan (ROW_COLUMNS)
    items: pa.Table  # the generation plan (ITEM_SCHEMA), distinct clean clips
    shards: list[ShardSpec]
    speakers: list[SyntheticSpeaker]
    report: dict[str, Any] = field(default_factory=dict)
    items_per_shard: int = 0


def multiplicity(spec: DatasetSpec) -> int:
    """Dataset items each planned row becomes: its clean clip (unless ``keep_clean`` is off) plus
    its augmented copies."""
    aug = spec.augmentation
    return 1 if aug is None else int(aug.keep_clean) + aug.copies


def target_utterances(spec: DatasetSpec, sources: list[SourceTexts], generator: Generator) -> int:
    """Rows to plan: ``size.utterances`` (or ``size.hours`` over the estimated mean duration) of
    dataset items, augmented copies included, over ``multiplicity``."""
    if spec.size.utterances is not None:
        return max(1, math.ceil(spec.size.utterances / multiplicity(spec)))
    rate = spec.speakers.params.get("rate_wpm")
    wpm = (rate.min + rate.max) / 2 if rate else float(generator.params.get("rate_wpm", 175))
    weights = np.array([s.weight for s in sources])
    means = []
    silence = {t.name: t.duration_s for t in spec.texts if t.kind == "silence"}
    for src in sources:
        if src.is_silence:
            means.append(silence[src.name])
        else:
            means.append(float(np.mean([estimated_duration_s(t, wpm) for t in src.texts])))
    mean_s = float(np.dot(weights, means) / weights.sum())
    return max(1, math.ceil(spec.size.hours * 3600 / mean_s / multiplicity(spec)))


def _text_units(src: SourceTexts, spec: DatasetSpec) -> np.ndarray | None:
    """Split index of each text of ``src`` (None: every split may use every text)."""
    by = spec.splits.disjoint_by
    if "source" in by:
        keys = src.docs
    elif "text" in by:
        keys = src.texts
    else:
        return None
    return splits.assign_units(keys, spec.splits, spec.seed, f"texts of source {src.name!r}")


def _speaker_splits(speakers: list[SyntheticSpeaker], spec: DatasetSpec) -> np.ndarray | None:
    if "speaker" not in spec.splits.disjoint_by:
        return None
    groups = [f"{s.language}|{s.gender}|{s.accent}" for s in speakers]
    return splits.assign_speakers([s.speaker_id for s in speakers], groups, spec.splits, spec.seed)


def _cell_targets(
    report: dict[str, dict[str, float]], targets: dict[str, dict[str, float]], n: int
) -> None:
    for attr, shares in targets.items():
        into = report.setdefault(attr, {})
        for value, share in shares.items():
            into[value] = into.get(value, 0.0) + share * n


def allocate(
    spec: DatasetSpec, sources: list[SourceTexts], speakers: list[SyntheticSpeaker], total: int
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Dataset rows (without ids and shards) and the target item count per balanced group."""
    names = splits.active_splits(spec.splits)
    # Sources first, then splits within each source: every source gets its exact share of the
    # dataset (class balance), and each split its share of every source (+-1 item per source).
    source_n = balance.largest_remainder(total, np.array([s.weight for s in sources]))
    ratios = np.array([spec.splits.ratios[s] for s in names])
    cells = np.stack([balance.largest_remainder(int(n), ratios) for n in source_n])
    spk_split = _speaker_splits(speakers, spec)
    text_split = [None if s.is_silence else _text_units(s, spec) for s in sources]
    languages = sorted({s.language for s in sources if not s.is_silence})
    frames: list[pd.DataFrame] = []
    targets: dict[str, dict[str, float]] = {}
    for k, split in enumerate(names):
        per_source = cells[:, k]
        rng = np.random.default_rng(ids.seed_of(spec.seed, "texts", split))
        for si, src in enumerate(sources):
            if src.is_silence and per_source[si]:
                c = int(per_source[si])
                frames.append(
                    pd.DataFrame(
                        {
                            "kind": KIND_SILENCE, "split": split, "text": "",
                            "label": src.labels[0], "source": src.name,
                            "source_doc": "", "speaker_id": None, "language": None,
                            "occurrence": np.arange(c),
                        }
                    )
                )  # fmt: skip
        for lang in languages:
            in_lang = [i for i, s in enumerate(sources) if s.language == lang and not s.is_silence]
            counts = np.array([per_source[i] for i in in_lang], dtype=np.int64)
            n = int(counts.sum())
            if n == 0:
                continue
            cell = [
                j
                for j, s in enumerate(speakers)
                if s.language == lang.split("-")[0] and (spk_split is None or spk_split[j] == k)
            ]
            if not cell:
                raise ConfigError(f"split {split!r} has no synthetic speaker of language {lang!r}")
            attrs = {a: [speakers[j].attributes()[a] for j in cell] for a in ATTRIBUTES}
            w, shown = balance.speaker_weights(attrs, spec.balance)
            _cell_targets(targets, shown, n)
            quotas = balance.largest_remainder(n, w)
            spk = np.repeat(np.asarray(cell), quotas)
            order = balance.interleave(counts)
            text_of = np.empty(n, dtype=object)
            doc_of = np.empty(n, dtype=object)
            label_of = np.empty(n, dtype=object)
            src_of = np.empty(n, dtype=object)
            for g, i in enumerate(in_lang):
                src = sources[i]
                avail = (
                    np.arange(len(src.texts))
                    if text_split[i] is None
                    else np.flatnonzero(text_split[i] == k)
                )
                where = np.flatnonzero(order == g)
                picks = avail[balance.cycle_texts(where.size, avail.size, rng)]
                text_of[where] = np.asarray(src.texts, dtype=object)[picks]
                doc_of[where] = np.asarray(src.docs, dtype=object)[picks]
                label_of[where] = np.asarray(src.labels, dtype=object)[picks]
                src_of[where] = src.name
            frames.append(
                pd.DataFrame(
                    {
                        "kind": KIND_SPEECH, "split": split, "text": text_of, "label": label_of,
                        "source": src_of, "source_doc": doc_of,
                        "speaker_id": [speakers[j].speaker_id for j in spk], "language": lang,
                        "occurrence": 0,
                    }
                )
            )  # fmt: skip
    return pd.concat(frames, ignore_index=True), targets


def _with_ids(
    rows: pd.DataFrame,
    spec: DatasetSpec,
    speakers: list[SyntheticSpeaker],
    generator: Generator,
    marks: str | None = None,
) -> pd.DataFrame:
    """Speaker attributes, clean ids (what decides the clean audio) and item ids."""
    by_id = {s.speaker_id: s for s in speakers}
    gen = generator.describe()
    fmt = spec.output.audio_format
    speech = rows["kind"] == KIND_SPEECH
    for attr in ("voice", "gender", "age_band", "accent"):
        rows[attr] = [
            getattr(by_id[s], attr) if isinstance(s, str) else None for s in rows["speaker_id"]
        ]
    params = {s.speaker_id: json.dumps(s.params, sort_keys=True) for s in speakers}
    rows["persona"] = [by_id[s].persona if isinstance(s, str) else None for s in rows["speaker_id"]]
    clean = []
    for is_speech, row in zip(speech, rows.itertuples(index=False), strict=True):
        if is_speech:
            # A persona's version is part of the id: a new version regenerates its clips.
            clean.append(
                ids.content_id(
                    row.text, row.voice, row.language, gen["name"], gen["version"],
                    params[row.speaker_id], fmt, *([row.persona] if isinstance(row.persona, str) else []),
                    *([marks] if marks else []),
                )
            )  # fmt: skip
        else:
            clean.append(
                ids.content_id("silence", spec.seed, row.source, row.split, row.occurrence)
            )
    rows["clean_id"] = clean
    # The n-th use of one clean clip is its own item (its own augmentation).
    rows["occurrence"] = rows.groupby("clean_id").cumcount()
    aug = ids.digest(spec.augmentation.model_dump(mode="json") if spec.augmentation else None)
    rows["id"] = [
        ids.content_id(c, o, aug, spec.seed)
        for c, o in zip(rows["clean_id"], rows["occurrence"], strict=True)
    ]
    rows["seed"] = [ids.seed_of(spec.seed, i) for i in rows["id"]]
    rows["generator_params"] = [
        params.get(s) if isinstance(s, str) else None for s in rows["speaker_id"]
    ]
    return rows


def _generation_items(rows: pd.DataFrame, spec: DatasetSpec, generator: Generator) -> pa.Table:
    """Distinct clean clips in the item schema (first use of each clean id)."""
    first = rows[(rows["kind"] == KIND_SPEECH) & (rows["occurrence"] == 0)]
    gen = generator.describe()
    n = len(first)
    attrs = [
        json.dumps(
            {"speaker_id": r.speaker_id, "gender": r.gender, "age_band": r.age_band,
             "accent": r.accent, "language": r.language, "source": r.source,
             "split": r.split, "label": r.label},
            sort_keys=True,
        )
        for r in first.itertuples(index=False)
    ]  # fmt: skip
    cols = {
        "id": first["clean_id"].tolist(),
        "catalog_id": first["source_doc"].tolist(),
        "chunk_index": [0] * n,
        "text": first["text"].tolist(),
        "voice": first["voice"].tolist(),
        "language": first["language"].tolist(),
        "generator": [gen["name"]] * n,
        "generator_version": [gen["version"]] * n,
        "generator_params": first["generator_params"].tolist(),
        "persona": [p if isinstance(p, str) else None for p in first["persona"]],
        "seed": [ids.seed_of(spec.seed, c) for c in first["clean_id"]],
        "attributes": attrs,
        "audio_format": [spec.output.audio_format] * n,
        "status": [STATUS_PENDING] * n,
        "change": [schema.CHANGE_NEW] * n,
    }
    return pa.Table.from_arrays(schema.item_arrays(cols), schema=schema.ITEM_SCHEMA)


def plan_report(
    rows: pd.DataFrame, targets: dict[str, dict[str, float]], spec: DatasetSpec
) -> dict[str, Any]:
    """Target vs planned share of every group: attributes of speech items, sources, splits."""
    groups = []
    speech = rows[rows["kind"] == KIND_SPEECH]
    n_speech = max(1, len(speech))
    col = {"speaker": "speaker_id"}
    for attr in ATTRIBUTES:
        counts = speech[col.get(attr, attr)].fillna("unknown").value_counts()
        wanted = targets.get(attr, {})
        for value in sorted(set(counts.index) | set(wanted)):
            groups.append(
                {"attribute": attr, "group": value, "planned": int(counts.get(value, 0)),
                 "target": wanted.get(value), "base": n_speech}
            )  # fmt: skip
    weights = {t.name: t.weight for t in spec.texts}
    total_w = sum(weights.values())
    for name, n in rows["source"].value_counts().items():
        groups.append(
            {"attribute": "source", "group": name, "planned": int(n),
             "target": len(rows) * weights[name] / total_w, "base": len(rows)}
        )  # fmt: skip
    # Class balance: a source's items spread evenly over its labels (texts cycle evenly).
    label_target: dict[str, float] = {}
    for _, src in rows.groupby("source"):
        labels = src["label"].unique()
        for label in labels:
            label_target[label] = label_target.get(label, 0.0) + len(src) / len(labels)
    for name, n in rows["label"].value_counts().items():
        groups.append(
            {"attribute": "label", "group": name, "planned": int(n),
             "target": label_target[name], "base": len(rows)}
        )  # fmt: skip
    for name, n in rows["split"].value_counts().items():
        groups.append(
            {"attribute": "split", "group": name, "planned": int(n),
             "target": len(rows) * spec.splits.ratios[name], "base": len(rows)}
        )  # fmt: skip
    for g in groups:
        g["planned_share"] = g["planned"] / g["base"]
        g["target_share"] = None if g["target"] is None else g["target"] / g["base"]
        g["within_tolerance"] = (
            None
            if g["target_share"] is None
            else abs(g["planned_share"] - g["target_share"]) <= spec.balance.tolerance
        )
    return {"items": len(rows), "speech_items": len(speech), "groups": groups}


def check_constraints(report: dict[str, Any], spec: DatasetSpec) -> None:
    """Fail when a planned share misses a min/max constraint by more than the tolerance."""
    tol = spec.balance.tolerance
    for c in spec.balance.constraints:
        share = next(
            (g["planned_share"] for g in report["groups"]
             if g["attribute"] == c.attribute and g["group"] == c.value),
            0.0,
        )  # fmt: skip
        if share < c.min_share - tol or share > c.max_share + tol:
            raise ConfigError(
                f"impossible balance constraint: {c.attribute}={c.value!r} gets {share:.1%} of "
                f"the speech items, outside [{c.min_share:.0%}, {c.max_share:.0%}] +/- {tol:.0%} "
                "with this speaker pool, split and size"
            )


def spec_digest(spec: DatasetSpec) -> str:
    """What decides a run's outputs beyond its item ids (filter, splits, exports, card)."""
    decides = spec.model_dump(
        mode="json",
        exclude={"output": {"url", "storage_options"}, "compute": True, "tracking": True},
    )
    return ids.digest(PLANNER_VERSION, schema.SCHEMA_VERSION, decides)


def build_plan(
    spec: DatasetSpec,
    generator: Generator,
    marks: str | None = None,
    registry: Store | None = None,
) -> DatasetPlan:
    """The deterministic plan of a dataset run (nothing is written). ``marks`` identifies the
    watermark applied to every clean clip (part of its id, as in a catalog run). ``registry``:
    where the pool's personas and their consent records live; a ConsentError, before any work,
    when one imitating a real person has no valid consent for the use "dataset"."""
    sources = load_sources(spec)
    choices = PersonaChoices(registry, generator)
    speakers = build_speakers(spec.speakers, generator, spec.seed, spec.languages, choices)
    choices.require_consent("dataset")
    total = target_utterances(spec, sources, generator)
    rows, targets = allocate(spec, sources, speakers, total)
    rows = _with_ids(rows, spec, speakers, generator, marks)
    report = plan_report(rows, targets, spec)
    check_constraints(report, spec)
    items = _generation_items(rows, spec, generator)
    per_shard = shard_size(max(1, items.num_rows), spec.sharding)
    digest = ids.stream_digest(rows["id"], per_shard, spec_digest(spec))
    run_id = ids.run_id(spec.name, digest)
    shards = make_shards(run_id, items.num_rows, per_shard)
    # A clean clip's dataset rows go with the shard that generates it; silence is dealt round robin.
    shard_of_clean = {c: i // per_shard for i, c in enumerate(items.column("id").to_pylist())}
    silence = rows["kind"] == KIND_SILENCE
    shard = rows["clean_id"].map(shard_of_clean)
    shard[silence] = np.arange(int(silence.sum())) % max(1, len(shards))
    rows["shard"] = shard.astype(np.int64)
    rows = rows[list(ROW_COLUMNS)]
    return DatasetPlan(run_id, rows, items, shards, speakers, report, per_shard)
