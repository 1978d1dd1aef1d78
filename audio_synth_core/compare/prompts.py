"""The prompts of a comparison: the texts every candidate speaks, inline, from a file, or a small
default set. A prompt's id and seed are derived from its content, so re-runs match."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from audio_synth_core.config.compare import CompareConfig, PromptSpec
from audio_synth_core.config.models import parse_model
from audio_synth_core.errors import ConfigError
from audio_synth_core.store import ids

# A small, varied default prompt set: three kinds of sentence, five each, so pass-rate parity by
# ``kind`` can be checked (fairness groups need at least 5 items). Plain words, known to cmudict.
DEFAULT_PROMPTS: tuple[tuple[str, str], ...] = (
    ("The train leaves the station at noon.", "statement"),
    ("She keeps her garden green all summer.", "statement"),
    ("We walked along the river after dinner.", "statement"),
    ("The old clock in the hall stopped at night.", "statement"),
    ("Fresh bread smells better than anything else.", "statement"),
    ("Where did you leave the keys this morning?", "question"),
    ("Can you hear the birds outside the window?", "question"),
    ("Why is the kitchen light still on?", "question"),
    ("How long does the drive take?", "question"),
    ("Who painted the blue door?", "question"),
    ("Please close the gate behind you.", "command"),
    ("Turn left at the next corner.", "command"),
    ("Bring a warm coat for the evening.", "command"),
    ("Write your name at the top of the page.", "command"),
    ("Call me when you get home.", "command"),
)


@dataclass(frozen=True)
class Prompt:
    """One text every candidate speaks; ``seed`` is shared so stochastic models are comparable."""

    id: str
    text: str
    language: str = "en-us"
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return ids.seed_of(self.id)


def _prompt(spec: PromptSpec) -> Prompt:
    pid = spec.id or ids.content_id(spec.language, spec.text)
    return Prompt(pid, spec.text, spec.language, dict(spec.attributes))


def _read_prompt_file(url: str) -> list[PromptSpec]:
    import fsspec

    suffix = url.lower().rsplit(".", 1)[-1]
    with fsspec.open(url, "r", encoding="utf-8") as fh:
        if suffix == "txt":
            return [PromptSpec(text=line.strip()) for line in fh if line.strip()]
        if suffix in ("csv", "jsonl"):
            df = (
                pd.read_csv(fh, dtype=str)
                if suffix == "csv"
                else pd.read_json(fh, lines=True, dtype=False)
            )
        else:
            raise ConfigError(f"prompts_path {url!r}: expected a .csv, .jsonl or .txt file")
    if "text" not in df.columns:
        raise ConfigError(
            f"prompts_path {url!r}: no 'text' column (columns: {', '.join(df.columns)})"
        )
    specs = []
    for row in df.to_dict(orient="records"):
        row = {
            k: v
            for k, v in row.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
        extra = {k: str(v) for k, v in row.items() if k not in ("text", "language", "id")}
        spec = {
            "text": str(row.get("text", "")),
            "language": str(row.get("language", "en-us")),
            "id": str(row["id"]) if "id" in row else None,
            "attributes": extra,
        }
        specs.append(parse_model(PromptSpec, spec, f"prompts_path {url!r}"))
    return specs


def load_prompts(cfg: CompareConfig) -> list[Prompt]:
    """The prompts of a comparison: inline, from ``prompts_path``, or the default set."""
    if cfg.prompts is not None:
        specs = list(cfg.prompts)
    elif cfg.prompts_path is not None:
        try:
            specs = _read_prompt_file(cfg.prompts_path)
        except FileNotFoundError:
            raise ConfigError(f"prompts_path {cfg.prompts_path!r} does not exist") from None
    else:
        specs = [PromptSpec(text=t, attributes={"kind": k}) for t, k in DEFAULT_PROMPTS]
    prompts = [_prompt(s) for s in specs][: cfg.max_prompts]
    if not prompts:
        raise ConfigError("prompts: no prompts to compare on")
    seen: dict[str, str] = {}
    for p in prompts:
        if p.id in seen:
            raise ConfigError(f"prompts: duplicate prompt {p.text!r} (id {p.id})")
        seen[p.id] = p.text
    return prompts
