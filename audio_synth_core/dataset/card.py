"""The dataset card: README.md in the export folder (and at the output root), in the manner of
Hugging Face dataset cards: what is in it (sizes per split and group, speakers), how it was made
(generator versions, synthetic speakers, augmentation, quality filter, splits), its license, and
how to load it in each export format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from audio_synth_core.config.dataset import DatasetSpec


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)\n"
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def _loading(exports: Mapping[str, Any], splits: list[str], root: str, name: str) -> str:
    first = splits[0] if splits else "train"
    parts = []
    if "hf" in exports:
        files = ", ".join(
            f'"{s}": "{root}/{exports["hf"]["path"]}/data/{s}-*.parquet"' for s in splits
        )
        parts.append(
            "**Hugging Face datasets** (Parquet, audio bytes embedded, `Audio` feature):\n\n"
            f'```python\nfrom datasets import load_dataset\nds = load_dataset("parquet", '
            f'data_files={{{files}}})\nds["{first}"][0]["audio"]  # decodes on access\n```\n'
        )
    if "lhotse" in exports:
        parts.append(
            "**Lhotse** (recordings, supervisions and cuts manifests per split):\n\n"
            f'```python\nfrom lhotse import CutSet\ncuts = CutSet.from_file("{root}/'
            f'{exports["lhotse"]["path"]}/{name}_cuts_{first}.jsonl.gz")\n'
            "audio = cuts[0].load_audio()\n```\n"
        )
    if "webdataset" in exports:
        parts.append(
            "**WebDataset** (tar shards per split: `<key>.flac` + `<key>.json`):\n\n"
            f'```python\nimport glob, webdataset as wds\nurls = sorted(glob.glob("{root}/'
            f'{exports["webdataset"]["path"]}/{first}/*.tar"))\nfor sample in '
            "wds.WebDataset(urls, shardshuffle=False):\n    ...\n```\n"
        )
    if "nemo" in exports:
        parts.append(
            "**NeMo** (JSON lines: `audio_filepath`, `text`, `duration`):\n\n"
            f"`{root}/{exports['nemo']['path']}/{first}_manifest.json` as "
            "`model.cfg.train_ds.manifest_filepath`.\n"
        )
    return "\n".join(parts)


def card_markdown(
    spec: DatasetSpec,
    run_id: str,
    sizes: pd.DataFrame,
    groups: pd.DataFrame,
    rates: pd.DataFrame,
    leaks: Mapping[str, Any],
    exports: Mapping[str, Any],
    generator: Mapping[str, Any],
    n_speakers: int,
    root: str = ".",
) -> str:
    """The card's Markdown."""
    splits = [str(s) for s in sizes["split"]] if not sizes.empty else []
    aug = spec.augmentation.model_dump(mode="json") if spec.augmentation else None
    by_group = groups[groups["attribute"].isin(["gender", "accent", "age_band", "source", "label"])]
    cols = [
        c
        for c in ("attribute", "group", "target_share", "achieved", "achieved_share")
        if c in by_group
    ]
    lines = [
        "---",
        f"license: {spec.output.license.lower()}",
        f"language: {json.dumps(spec.languages)}",
        "tags: [synthetic, speech, audio-synth]",
        "---",
        "",
        f"# {spec.name}",
        "",
        spec.description or "A synthetic speech dataset made by audio-synth.",
        "",
        f"Run `{run_id}`. Every clip is synthetic: made by `{generator['name']}` "
        f"{generator['version']} with {n_speakers} synthetic speakers (a voice, a variant and "
        "drawn pitch/rate parameters each). Do not present it as recordings of people.",
        "",
        "## Sizes per split",
        "",
        _table(sizes),
        "## Groups (planned rows kept, before augmented copies)",
        "",
        _table(by_group[cols]),
        "## How it was made",
        "",
        f"- Generator: `{generator['name']}` version `{generator['version']}`, parameters "
        f"`{json.dumps(generator['params'], sort_keys=True)}`; per-speaker parameters are in each "
        "item's metadata.",
        f"- Speakers: voices {spec.speakers.voices}, variants {spec.speakers.variants or 'none'}, "
        f"parameter ranges `{json.dumps(spec.speakers.model_dump(mode='json')['params'])}`, "
        f"seed {spec.seed}.",
        f"- Balance: equal shares by {spec.balance.by}, constraints "
        f"{[c.model_dump() for c in spec.balance.constraints] or 'none'}, tolerance "
        f"{spec.balance.tolerance}.",
        f"- Augmentation: `{json.dumps(aug, sort_keys=True)}`. Each augmented item records its "
        "clean id and the exact parameters it got (`augmentation` column).",
        f"- Quality filter (on the clean clip): `{spec.quality_filter.model_dump_json()}`.",
        f"- Splits: ratios {spec.splits.ratios}, disjoint by {spec.splits.disjoint_by}. "
        f"Leak check (shared hashed speakers / texts / documents): {leaks['totals']}.",
        "",
        "## Rejection rate per group",
        "",
        _table(rates[rates["attribute"].isin(["split", "source", "gender", "accent"])]),
        "## Loading",
        "",
        _loading(exports, splits, root, spec.name),
        "## License",
        "",
        f"{spec.output.license}. The texts come from the sources named in the spec; check their "
        "licenses before redistribution.",
        "",
    ]
    return "\n".join(lines)
