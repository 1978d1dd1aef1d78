"""Planning chunks: ids decided by content, lexicon versioning, pauses, dialogue voices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audio_synth_core.audiobook.books import find_books, read_book
from audio_synth_core.audiobook.lexicon import build_lexicon, speakable
from audio_synth_core.audiobook.plan import build_plan
from audio_synth_core.config.audiobook import AudiobookConfig, BookManifest, LexiconEntry
from audio_synth_core.errors import ConfigError
from audio_synth_core.generators.base import SynthesisRequest, build_generator
from tests.core.audiobook.bookfiles import make_markdown_book

TEXT = """# Tales

## First

Anna went home. Tom stayed. Anna slept.

## Second

The sea was calm.
"""


@pytest.fixture(scope="module")
def espeak():
    return build_generator("espeak", {})


def _plan(tmp_path, espeak, lexicon=None, cfg=None, text=TEXT):
    folder = make_markdown_book(tmp_path / "tales", text, lexicon)
    book = read_book(find_books(str(folder))[0])
    return build_plan(cfg or AudiobookConfig(), espeak, [book])


def test_lexicon_change_touches_only_chunks_with_the_word(tmp_path, espeak):
    before = _plan(tmp_path, espeak)
    after = _plan(tmp_path, espeak, [{"word": "anna", "say": "Ah-nah"}])
    old, new = before.items.to_pandas(), after.items.to_pandas()
    changed = old[old["id"] != new["id"]]
    assert list(changed["text"]) == ["Anna went home.", "Anna slept."]
    assert list(new.loc[changed.index, "text"]) == ["Ah-nah went home.", "Ah-nah slept."]
    first = next(c for c in after.books[0].chapters if c.slot == "01")
    second = next(c for c in after.books[0].chapters if c.slot == "02")
    keys = {c.slot: c.key for c in before.books[0].chapters}
    assert first.key != keys["01"] and second.key == keys["02"]
    assert before.books[0].lexicon_version != after.books[0].lexicon_version
    assert before.run_id != after.run_id


def test_chunks_pauses_and_ids(tmp_path, espeak):
    plan = _plan(tmp_path, espeak)
    chapters = {c.slot: c for c in plan.books[0].chapters}
    assert list(chapters) == ["opening", "01", "02", "closing"]
    first = chapters["01"]
    assert [c.script for c in first.chunks] == [
        "First",
        "Anna went home.",
        "Tom stayed.",
        "Anna slept.",
    ]
    assert [c.pause_after_s for c in first.chunks] == [1.5, 0.45, 0.45, 0.0]
    assert plan.items.num_rows == len(set(plan.items.column("id").to_pylist()))
    # The same plan again: the same run and ids (resume relies on it).
    assert _plan(tmp_path / "again", espeak).run_id == plan.run_id


def test_repeated_sentences_get_distinct_ids(tmp_path, espeak):
    plan = _plan(tmp_path, espeak, text="## A\n\nYes. Yes. No.\n")
    ids = plan.items.column("id").to_pylist()
    assert len(ids) == len(set(ids))


def test_dialogue_voice(tmp_path, espeak):
    folder = make_markdown_book(tmp_path / "d", '## A\n\nShe said "Come here now." Then left.\n')
    book = read_book(find_books(str(folder))[0])
    book = dataclasses.replace(
        book, manifest=BookManifest(dialogue_voice="en-us+f3", voice="en-us")
    )
    chunks = build_plan(AudiobookConfig(), espeak, [book]).books[0].chapters[1].chunks
    assert [(c.script, c.voice) for c in chunks[1:]] == [
        ("She said", "en-us"),
        ('"Come here now."', "en-us+f3"),
        ("Then left.", "en-us"),
    ]


def test_lexicon_rules_and_phonemes(espeak):
    lex = build_lexicon(
        [
            LexiconEntry(word="St.", say="Saint"),
            LexiconEntry(regex=r"\bDr\b\.?", say="Doctor"),
            LexiconEntry(word="hello", say="[[h@l'oU]]"),
        ]
    )
    assert lex.apply("Dr. Who met St. Ann.") == "Doctor Who met Saint Ann."
    assert lex.apply("hello Hello world") == "[[h@l'oU]] [[h@l'oU]] world"
    assert speakable("[[h@l'oU]] world") == "world"
    with pytest.raises(ConfigError, match="invalid"):
        build_lexicon([LexiconEntry(regex="(", say="x")])
    # espeak speaks phoneme input: the phoneme string sounds like the word it stands for.
    said = espeak.generate([SynthesisRequest(lex.apply("hello world"), "en-us")])[0]
    plain = espeak.generate([SynthesisRequest("hello world", "en-us")])[0]
    assert isinstance(said, np.ndarray) and abs(len(said) - len(plain)) < 0.1 * len(plain)
