from __future__ import annotations

import pytest

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.frontend import (
    BOUNDARY,
    UNK_ID,
    Frontend,
    Vocabulary,
    split_chars,
    split_ipa,
)


@pytest.mark.parametrize(
    ("ipa", "symbols"),
    [
        ("ðə kwˈɪk", ["ð", "ə", BOUNDARY, "k", "w", "ˈ", "ɪ", "k"]),
        ("fˈɑːks", ["f", "ˈ", "ɑː", "k", "s"]),  # length mark stays on its vowel
        ("tʰˌɛn", ["tʰ", "ˌ", "ɛ", "n"]),  # aspiration stays on its consonant
        ("d͡ʒ", ["d͡ʒ"]),  # a tie bar joins two characters
        ("  a   b ", ["a", BOUNDARY, "b"]),
        ("", []),
    ],
)
def test_split_ipa(ipa: str, symbols: list[str]) -> None:
    assert split_ipa(ipa) == symbols


@pytest.mark.parametrize(
    ("text", "symbols"),
    [
        ("Hi, you!", ["h", "i", ",", BOUNDARY, "y", "o", "u", "!"]),
        ("a  --  b", ["a", BOUNDARY, "-", "-", BOUNDARY, "b"]),
        ("  X  ", ["x"]),
    ],
)
def test_split_chars(text: str, symbols: list[str]) -> None:
    assert split_chars(text) == symbols


def test_vocabulary_is_deterministic_and_round_trips() -> None:
    texts = ["Hello there.", "General Kenobi!"]
    a = Frontend("chars").fit(texts)
    b = Frontend("chars").fit(list(reversed(texts)))
    assert a.vocabulary == b.vocabulary
    again = Frontend.from_dict(a.to_dict())
    assert again.encode("hello kenobi") == a.encode("hello kenobi")
    assert a.encode("zzz")[1] == UNK_ID  # unseen symbol
    ids = a.encode("hello")
    assert ids[0] == ids[-1] == a.vocabulary.index[BOUNDARY]


def test_vocabulary_rejects_bad_tables() -> None:
    with pytest.raises(ConfigError):
        Vocabulary(("a", "b"))
    with pytest.raises(ConfigError):
        Frontend("chars").encode("no vocabulary yet")
    with pytest.raises(ConfigError):
        Frontend.from_dict({"kind": "chars", "colour": "red"})


def test_espeak_frontend_uses_ipa() -> None:
    frontend = Frontend("espeak", "en-us").fit(["The quick brown fox."])
    symbols = frontend.symbols("The quick brown fox.")
    assert "ð" in symbols and "ˈ" in symbols
    assert UNK_ID not in frontend.encode("The quick brown fox.")
