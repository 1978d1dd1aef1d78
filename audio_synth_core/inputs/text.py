"""Text preparation for synthesis: normalization, sentence splitting and chunking. Pure functions.

Sentence splitting is a compact rule set (regex candidates + per-language abbreviation lists), not a
library: it adds no dependency, never changes between installs (chunk boundaries decide what audio
is made, so they must be reproducible), and handles the cases we synthesize (titles, ``e.g.``,
``z.B.``, decimals, ordinals, ellipses, quotes) in linear time. Languages without a list get the
language-neutral rules.
"""

from __future__ import annotations

import re
import unicodedata

# Typographic quotes and dashes -> ASCII. Apostrophe-like single quotes become "'" so that
# contractions (don't, l'homme) stay one word; guillemets become plain double quotes.
_TRANSLATE = str.maketrans(
    {
        **dict.fromkeys("“”„‟«»〝〞＂", '"'),
        **dict.fromkeys("‘’‚‛‹›", "'"),
        **dict.fromkeys("‐‑‒–—―−﹘﹣", "-"),
    }
)
# Format characters that carry meaning in some scripts (Persian, Indic): kept.
_KEEP_FORMAT = {"\u200c", "\u200d"}
# Control (Cc), format (Cf), surrogate (Cs) and unassigned (Cn) code points are dropped;
# whitespace controls (\t, \n, \r) are turned into spaces first.
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Cn"}
_WHITESPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, ASCII quotes and dashes, no control or invisible format characters, single spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    text = _WHITESPACE.sub(" ", text)
    if not text.isprintable():
        text = "".join(
            ch
            for ch in text
            if ch in _KEEP_FORMAT or unicodedata.category(ch) not in _DROP_CATEGORIES
        )
        text = _WHITESPACE.sub(" ", text)
    return text.strip()


# Abbreviations (lower case, without the final dot) after which a "." never ends a sentence:
# titles and in-sentence abbreviations. Ambiguous ones (etc., Inc., a.m.) are left out on purpose:
# for those the case of the next word decides, like for any other word.
_COMMON_ABBREVIATIONS = {"dr", "prof", "e.g", "i.e", "vs", "cf", "ca"}
# Abbreviations that precede a number ("No. 5", "S. 12", "Art. 3"): a "." after them ends the
# sentence unless a digit follows ("He said no. Then ..." is two sentences).
_NUMBERED = {
    "no",
    "nos",
    "nr",
    "p",
    "pp",
    "s",
    "n",
    "art",
    "abs",
    "fig",
    "figs",
    "vol",
    "ch",
    "pag",
    "pág",
    "págs",
    "núm",
    "bd",
}
_ABBREVIATIONS = {
    "en": {
        "mr",
        "mrs",
        "ms",
        "st",
        "jr",
        "sr",
        "mt",
        "gen",
        "gov",
        "sen",
        "rep",
        "capt",
        "col",
        "lt",
        "sgt",
        "rev",
        "hon",
        "approx",
        "dept",
        "est",
        "viz",
    },
    "de": {
        "hr",
        "hrn",
        "fr",
        "frl",
        "z.b",
        "d.h",
        "u.a",
        "u.u",
        "v.a",
        "z.t",
        "o.ä",
        "u.ä",
        "i.d.r",
        "bzw",
        "vgl",
        "ggf",
        "evtl",
        "inkl",
        "exkl",
        "bspw",
        "sog",
        "str",
        "jh",
        "geb",
        "gest",
        "dipl",
        "ing",
    },
    "fr": {
        "m",
        "mm",
        "mme",
        "mmes",
        "mlle",
        "mlles",
        "mgr",
        "pr",
        "me",
        "p.ex",
        "env",
        "av",
        "st",
        "ste",
        "réf",
        "chap",
    },
    "es": {
        "sr",
        "sra",
        "sres",
        "sras",
        "srta",
        "dra",
        "d",
        "dña",
        "ud",
        "uds",
        "vd",
        "vds",
        "lic",
        "ing",
        "p.ej",
        "av",
        "avda",
        "ee",
        "cía",
        "aprox",
    },
    "it": {
        "sig",
        "sigg",
        "sig.ra",
        "sig.na",
        "dott",
        "dott.ssa",
        "prof.ssa",
        "avv",
        "ing",
        "geom",
        "rag",
        "arch",
        "on",
        "es",
        "p.es",
        "cfr",
    },
}
# Ordinal numbers are written "3." in these languages: "am 3. Oktober" is one sentence.
_ORDINAL_DOT_LANGUAGES = {"de", "da", "nb", "no", "fi", "cs", "sk", "pl", "hu", "tr", "sl", "hr"}
_MONTHS = {
    "de": {
        "januar",
        "jänner",
        "februar",
        "märz",
        "april",
        "mai",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "dezember",
    },
}

# A candidate boundary: terminators, optional closing quotes/brackets, then whitespace.
_CANDIDATE = re.compile(r"([.!?…]+)([\"'“”‘’«»)\]}]*)(\s+)")
_LAST_WORD = re.compile(r"\S+$")
# Full-width terminators end a sentence without any space after them (Chinese, Japanese).
_CJK_END = re.compile(r"[。！？]+[」』\"')）]*")
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_OPENERS = "\"'“‘„«‹([{¿¡"


def _primary(language: str | None) -> str:
    return (language or "").replace("_", "-").split("-", 1)[0].strip().lower()


def _ends_sentence(text: str, start: int, term: str, after: int, lang: str) -> bool:
    """Whether the terminator ``term`` at ``start`` ends a sentence, given the text ``after`` it."""
    nxt = text[after : after + 1]
    while nxt and nxt in _OPENERS and after + 1 < len(text):
        after += 1
        nxt = text[after]
    if nxt.islower():
        # "e.g. apples", "Wait... what?", "um 3. oder 4." stay one sentence.
        return False
    if "." not in term or "!" in term or "?" in term:
        return True
    found = _LAST_WORD.search(text, max(0, start - 40), start)
    word = found.group(0).lstrip(_OPENERS) if found else ""
    low = word.lower()
    if term == "." and (low in _COMMON_ABBREVIATIONS or low in _ABBREVIATIONS.get(lang, ())):
        return False
    if term == "." and low in _NUMBERED and nxt.isdigit():
        return False
    if term == "." and len(word) == 1 and word.isupper():
        return False  # an initial: "J. R. R. Tolkien"
    if term == "." and word.isdigit() and lang in _ORDINAL_DOT_LANGUAGES:
        match = re.match(r"\w+", text[after:])
        if match and match.group(0).lower() in _MONTHS.get(lang, ()):
            return False
    return True


def _split_paragraph(text: str, lang: str) -> list[str]:
    out: list[str] = []
    begin = 0
    for match in _CANDIDATE.finditer(text):
        end = match.end(2)
        if _ends_sentence(text, match.start(1), match.group(1), match.end(), lang):
            out.append(text[begin:end])
            begin = match.end()
    out.append(text[begin:])
    sentences: list[str] = []
    for piece in out:
        sentences.extend(_split_cjk(piece))
    return [s.strip() for s in sentences if s.strip()]


def _split_cjk(text: str) -> list[str]:
    if not _CJK_END.search(text):
        return [text]
    pieces, begin = [], 0
    for match in _CJK_END.finditer(text):
        pieces.append(text[begin : match.end()])
        begin = match.end()
    pieces.append(text[begin:])
    return pieces


def split_sentences(text: str, language: str | None) -> list[str]:
    """Sentences of ``text`` (stripped, none empty). Blank lines always end a sentence.

    ``language`` is a tag such as ``en``, ``de-DE`` or ``fr_FR``; its primary subtag selects the
    abbreviation list (en, de, fr, es, it); other languages get the language-neutral rules.
    """
    lang = _primary(language)
    out: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        if paragraph.strip():
            out.extend(_split_paragraph(paragraph, lang))
    return out


# Where an over-long sentence may be cut: after clause punctuation, or around a spaced dash.
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|\s+(?=-\s)|(?<=[，；：、])\s*")


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Pieces of at most ``max_chars``: clause punctuation first, then spaces, then hard cuts."""
    pieces: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        if len(clause) <= max_chars:
            pieces.append(clause)
            continue
        for word in clause.split(" "):
            if len(word) <= max_chars:
                pieces.append(word)
            else:  # a "word" longer than a chunk (a URL, a run of digits): cut it
                pieces.extend(word[i : i + max_chars] for i in range(0, len(word), max_chars))
    return _pack(pieces, max_chars)


def _pack(pieces: list[str], max_chars: int) -> list[str]:
    """Greedily join pieces with single spaces into strings of at most ``max_chars``."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        if not piece:
            continue
        if current and size + 1 + len(piece) > max_chars:
            chunks.append(" ".join(current))
            current, size = [], 0
        size += len(piece) + (1 if current else 0)
        current.append(piece)
    if current:
        chunks.append(" ".join(current))
    return chunks


def chunk(text: str, language: str | None, max_chars: int = 400) -> list[str]:
    """Normalized text as chunks of at most ``max_chars``, made of whole sentences where possible.

    Sentences are packed greedily; one longer than ``max_chars`` is cut at clause punctuation,
    then at spaces, and only a single word longer than ``max_chars`` is cut inside.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    pieces: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        for sentence in split_sentences(normalize(paragraph), language):
            if len(sentence) <= max_chars:
                pieces.append(sentence)
            else:
                pieces.extend(_split_long(sentence, max_chars))
    return _pack(pieces, max_chars)
