from __future__ import annotations

import time

import pytest

from audio_synth_core.inputs.text import chunk, normalize, split_sentences

SPLIT_CASES = [
    # (language, text, expected sentences)
    (
        "en",
        "Dr. Smith paid $3.50 for e.g. apples. Then he left!",
        ["Dr. Smith paid $3.50 for e.g. apples.", "Then he left!"],
    ),
    (
        "en",
        "Mr. Jones, i.e. the boss, agreed. Did he?",
        ["Mr. Jones, i.e. the boss, agreed.", "Did he?"],
    ),
    ("en", "Wait... what? Well... Fine.", ["Wait... what?", "Well...", "Fine."]),
    ("en", "He said no. Then No. 5 won.", ["He said no.", "Then No. 5 won."]),
    (
        "en",
        "J. R. R. Tolkien wrote it. It was 5 p.m. The end.",
        ["J. R. R. Tolkien wrote it.", "It was 5 p.m.", "The end."],
    ),
    (
        "en",
        'She asked "why?" and left. "Stop." He stopped.',
        ['She asked "why?" and left.', '"Stop."', "He stopped."],
    ),
    ("en", "Version 3.5 is out. Pi is 3.14159.", ["Version 3.5 is out.", "Pi is 3.14159."]),
    ("en", "no terminator at the end", ["no terminator at the end"]),
    ("en-US", "Title\n\nBody text. More text.", ["Title", "Body text.", "More text."]),
    (
        "de",
        "Dr. Müller kam z.B. um 3.5 Uhr. Das ist usw. klar.",
        ["Dr. Müller kam z.B. um 3.5 Uhr.", "Das ist usw. klar."],
    ),
    (
        "de",
        "Am 3. Oktober war Feiertag. Siehe S. 12 und Art. 3 GG.",
        ["Am 3. Oktober war Feiertag.", "Siehe S. 12 und Art. 3 GG."],
    ),
    ("de_DE", "Er sagte: „Ja.“ Dann ging er.", ["Er sagte: „Ja.“", "Dann ging er."]),
    (
        "fr",
        "M. Dupont est arrivé. Mme Curie aussi. C'est fini...",
        ["M. Dupont est arrivé.", "Mme Curie aussi.", "C'est fini..."],
    ),
    (
        "fr",
        "Il a dit « bonjour ». Vraiment ? Oui !",
        ["Il a dit « bonjour ».", "Vraiment ?", "Oui !"],
    ),
    (
        "es",
        "El Sr. García llegó a las 3.30. ¿Vino la Sra. López? ¡Sí!",
        ["El Sr. García llegó a las 3.30.", "¿Vino la Sra. López?", "¡Sí!"],
    ),
    ("es", "Fue a EE. UU. ayer. Volvió hoy.", ["Fue a EE. UU. ayer.", "Volvió hoy."]),
    (
        "it",
        "Il Sig. Rossi è arrivato alle 3.30. Va bene? Sì.",
        ["Il Sig. Rossi è arrivato alle 3.30.", "Va bene?", "Sì."],
    ),
    (
        "it",
        "Il dott. Bianchi, per es. il medico, è qui.",
        ["Il dott. Bianchi, per es. il medico, è qui."],
    ),
    ("zh", "你好。今天天气很好！好的", ["你好。", "今天天气很好！", "好的"]),
    ("xx", "Unknown language. Neutral rules apply.", ["Unknown language.", "Neutral rules apply."]),
]


@pytest.mark.parametrize(("language", "text", "expected"), SPLIT_CASES)
def test_split_sentences(language: str, text: str, expected: list[str]) -> None:
    assert split_sentences(text, language) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  “Hello”\u00a0— it’s\tme…  ", '"Hello" - it\'s me...'),
        ("co\u00adoperate\u200b now\x07", "cooperate now"),
        ("ﬁne ＡＢＣ １２３", "fine ABC 123"),
        ("line one\r\n\nline two", "line one line two"),
        ("«Bonjour» ‹x› „Ja“", '"Bonjour" \'x\' "Ja"'),
        ("می\u200cخواهم", "می\u200cخواهم"),  # ZWNJ is meaningful in Persian: kept
        ("", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


LONG_TEXT = (
    "Dr. Smith paid $3.50 for e.g. apples... Then he left, and nobody saw him again; truly! "
    "A sentence that keeps going, with many clauses, and more clauses, and still more of them, "
    "until it is far longer than any chunk could be, which forces a split at a comma, or a "
    "semicolon; and, failing that, at a space between two words that are not split apart. "
)


@pytest.mark.parametrize("max_chars", [40, 80, 400])
def test_chunk_bounds_and_words(max_chars: int) -> None:
    text = LONG_TEXT * 5
    chunks = chunk(text, "en", max_chars=max_chars)
    assert chunks
    assert all(0 < len(c) <= max_chars for c in chunks)
    # Nothing lost, nothing cut inside a word.
    assert " ".join(chunks).split() == normalize(text).split()


def test_chunk_keeps_sentences_whole_when_they_fit() -> None:
    chunks = chunk("One. Two two. Three three three.", "en", max_chars=14)
    assert chunks == ["One. Two two.", "Three three", "three."]


def test_chunk_cuts_only_words_longer_than_a_chunk() -> None:
    chunks = chunk("short " + "x" * 25 + " end", "en", max_chars=10)
    assert chunks == ["short", "x" * 10, "x" * 10, "xxxxx end"]


def test_chunk_100k_characters_is_fast() -> None:
    text = (LONG_TEXT * 400)[:100_000]
    start = time.perf_counter()
    chunks = chunk(text, "en")
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert all(len(c) <= 400 for c in chunks)
    assert " ".join(chunks).split() == normalize(text).split()
    start = time.perf_counter()
    assert chunk("x" * 100_000, "en") == ["x" * 400] * 250
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t", "\u200b"])
def test_empty_input(text: str) -> None:
    assert chunk(text, "en") == []
    assert split_sentences(normalize(text), "en") == []


def test_chunk_rejects_bad_max_chars() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk("text", "en", max_chars=0)
