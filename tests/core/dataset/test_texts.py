"""Text sources: corpora, catalogs, templates, silence; de-duplication and clear errors."""

from __future__ import annotations

import pytest

from audio_synth_core.config.dataset import TextSource, parse_spec
from audio_synth_core.dataset.texts import load_source, load_sources, normalize_for_match
from audio_synth_core.errors import CatalogError, ConfigError
from tests.core.dataset.specs import spec


def test_normalize_for_match():
    assert normalize_for_match("  Turn  ON!  ") == "turn on"
    assert normalize_for_match("don\u2019t stop") == "don't stop"


def test_corpus_file_one_sentence_a_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("First line here.\n\n  first LINE here \nSecond line.\n", encoding="utf-8")
    src = load_source(TextSource(name="c", kind="lines", path=str(path)), "en")
    assert src.texts == ["First line here.", "Second line."]
    assert src.docs == ["c:0", "c:3"]  # each line its own document
    assert src.labels == ["first line here", "second line"]
    one = load_source(
        TextSource(name="c", kind="lines", path=str(path), document_per_file=True), "en"
    )
    assert len(set(one.docs)) == 1


def test_catalog_rows_are_documents(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text('id,text\nbook,"One sentence. Two sentence."\nad,Buy now.\n', encoding="utf-8")
    src = load_source(TextSource(name="cat", kind="catalog", path=str(path)), "en")
    assert src.texts == ["One sentence.", "Two sentence.", "Buy now."]
    assert src.docs == ["cat:book", "cat:book", "cat:ad"]


def test_template_expands_every_combination():
    src = load_source(
        TextSource(name="t", kind="template", template="set {thing} to {n}",
                   slots={"thing": ["timer", "alarm"], "n": ["one", "two", "three"]},
                   label="setting"),
        "en",
    )  # fmt: skip
    assert len(src.texts) == 6 and "set alarm to three" in src.texts
    assert set(src.labels) == {"setting"}


def test_silence_has_no_text():
    src = load_source(TextSource(name="silence", kind="silence"), "en")
    assert src.is_silence and src.labels == ["silence"]


def test_texts_are_deduplicated_across_sources():
    cfg = parse_spec(
        spec(texts=[{"name": "a", "kind": "lines", "lines": ["go", "stop"]},
                    {"name": "b", "kind": "lines", "lines": ["Go!", "wait"]}])
    )  # fmt: skip
    a, b = load_sources(cfg)
    assert a.texts == ["go", "stop"] and b.texts == ["wait"]


def test_empty_and_missing_sources_fail_clearly(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"texts\[e\]: the source has no non-empty text"):
        load_source(TextSource(name="e", kind="lines", path=str(empty)), "en")
    with pytest.raises(CatalogError, match="does not exist"):
        load_source(TextSource(name="m", kind="lines", path=str(tmp_path / "nope.txt")), "en")
