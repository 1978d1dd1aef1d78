"""Prompts (compare/prompts.py): inline, from CSV/JSONL/TXT files or the default set; ids and
seeds derived from content."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio_synth_core.compare.prompts import load_prompts
from audio_synth_core.config.compare import parse_compare_config
from audio_synth_core.errors import ConfigError

from .conftest import config


def test_prompts_from_files_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("text,kind\nHello there.,greeting\nGood night.,farewell\n")
    (tmp_path / "p.jsonl").write_text('{"text": "One.", "language": "en-gb"}\n{"text": "Two."}\n')
    (tmp_path / "p.txt").write_text("First line.\n\nSecond line.\n")
    csv = load_prompts(parse_compare_config(config(prompts_path=str(tmp_path / "p.csv"))))
    assert [p.text for p in csv] == ["Hello there.", "Good night."] and csv[0].attributes == {
        "kind": "greeting"
    }
    jsonl = load_prompts(parse_compare_config(config(prompts_path=str(tmp_path / "p.jsonl"))))
    assert [p.language for p in jsonl] == ["en-gb", "en-us"]
    assert (
        len(load_prompts(parse_compare_config(config(prompts_path=str(tmp_path / "p.txt"))))) == 2
    )
    defaults = load_prompts(parse_compare_config(config(max_prompts=4)))
    assert len(defaults) == 4 and len({p.id for p in defaults}) == 4
    assert defaults == load_prompts(
        parse_compare_config(config(max_prompts=4))
    )  # deterministic ids
    with pytest.raises(ConfigError, match="duplicate prompt"):
        load_prompts(parse_compare_config(config(prompts=["Same.", "Same."])))
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompts(parse_compare_config(config(prompts_path=str(tmp_path / "missing.csv"))))


def test_prompt_ids_and_seeds_follow_content() -> None:
    one, two, named = load_prompts(
        parse_compare_config(
            config(prompts=["Same text.", "Other text.", {"text": "Same text.", "id": "p1"}])
        )
    )
    assert one.id != two.id and named.id == "p1"
    again = load_prompts(parse_compare_config(config(prompts=["Other text.", "Same text."])))
    assert [p.id for p in again] == [two.id, one.id]  # the id is the content, not the position
    assert [p.seed for p in again] == [two.seed, one.seed]
    assert len({one.seed, two.seed, named.seed}) == 3 and all(0 <= p.seed < 2**31 for p in again)
