"""Text -> symbol id sequences for the acoustic model.

Two kinds of front end share one vocabulary format:

- ``espeak``: espeak-ng's IPA (``EspeakGenerator.phonemes``) split into symbols; a base character
  keeps the modifiers that follow it (length ``ː``, aspiration ``ʰ``, combining diacritics), stress
  marks are symbols of their own, and a space is the word boundary.
- ``chars``: lower-cased characters (letters, digits, apostrophe, basic punctuation) for languages or
  machines without espeak.

The vocabulary is built from the training texts in sorted order, so the same texts always give the
same ids; it is saved with the model (``to_dict``) and never rebuilt at synthesis time. Every
sequence starts and ends with the word-boundary symbol, which gives the aligner a place to put
leading and trailing silence.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from audio_synth_core.errors import ConfigError

PAD = "<pad>"
UNK = "<unk>"
BOUNDARY = " "
SPECIALS = (PAD, UNK, BOUNDARY)
PAD_ID, UNK_ID, BOUNDARY_ID = 0, 1, 2

KINDS = ("espeak", "chars")
_STRESS = {"ˈ", "ˌ"}
_CHAR_PUNCT = set(",.?!;:'-")
_TIE = {"\u0361", "\u035c"}  # a tie bar joins the next base character to this symbol


def _is_modifier(ch: str) -> bool:
    """True for characters that belong to the preceding base symbol (ː, ʰ, ʲ, diacritics)."""
    if ch in _STRESS:
        return False
    return unicodedata.category(ch) in ("Mn", "Lm", "Sk") or ch in {"ː", "ˑ"}


def split_ipa(ipa: str) -> list[str]:
    """IPA text -> symbols: words split by spaces, stress marks separate, modifiers attached."""
    symbols: list[str] = []
    for word in ipa.split():
        if symbols:
            symbols.append(BOUNDARY)
        tie = False
        for ch in word:
            if ch in _STRESS:
                symbols.append(ch)
                tie = False
            elif symbols and symbols[-1] not in SPECIALS and (tie or _is_modifier(ch)):
                symbols[-1] += ch
                tie = ch in _TIE
            else:
                symbols.append(ch)
                tie = False
    return symbols


def split_chars(text: str) -> list[str]:
    """Plain text -> lower-cased characters; runs of other characters become one boundary."""
    symbols: list[str] = []
    for ch in unicodedata.normalize("NFC", text.lower()):
        if ch.isalnum() or ch in _CHAR_PUNCT:
            symbols.append(ch)
        elif symbols and symbols[-1] != BOUNDARY:
            symbols.append(BOUNDARY)
    while symbols and symbols[-1] == BOUNDARY:
        symbols.pop()
    return symbols


@dataclass(frozen=True)
class Vocabulary:
    """Symbols by id: ``<pad>`` = 0, ``<unk>`` = 1, word boundary = 2, then sorted symbols."""

    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.symbols[: len(SPECIALS)] != SPECIALS:
            raise ConfigError(f"a vocabulary must start with {SPECIALS}")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError("a vocabulary must not repeat symbols")

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]]) -> Vocabulary:
        seen = {s for seq in sequences for s in seq} - set(SPECIALS)
        return cls(SPECIALS + tuple(sorted(seen)))

    def __len__(self) -> int:
        return len(self.symbols)

    @cached_property
    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}

    def ids(self, symbols: Sequence[str]) -> list[int]:
        return [self.index.get(s, UNK_ID) for s in symbols]


Phonemizer = Callable[[str, str], str]


def espeak_phonemizer(text: str, voice: str) -> str:
    """IPA for ``text`` spoken by espeak-ng ``voice`` (imported lazily: espeak loads a library)."""
    from audio_synth_core.generators.espeak import EspeakGenerator

    return EspeakGenerator().phonemes(text, voice)


class Frontend:
    """Turns text into the id sequences the acoustic model reads; serializable with ``to_dict``."""

    def __init__(
        self,
        kind: str = "espeak",
        voice: str = "en-us",
        vocabulary: Vocabulary | None = None,
        phonemizer: Phonemizer | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"unknown frontend kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.voice = voice
        self.vocabulary = vocabulary
        # Injectable so another phonemizer can stand in for espeak; not serialized.
        self._phonemizer = phonemizer or espeak_phonemizer

    def symbols(self, text: str) -> list[str]:
        """The symbol sequence of ``text``, boundary symbols at both ends."""
        if self.kind == "espeak":
            inner = split_ipa(self._phonemizer(text, self.voice))
        else:
            inner = split_chars(text)
        return [BOUNDARY, *inner, BOUNDARY]

    def fit(self, texts: Iterable[str]) -> Frontend:
        """A copy of this frontend with a vocabulary built from ``texts``."""
        vocabulary = Vocabulary.build(self.symbols(t) for t in texts)
        return Frontend(self.kind, self.voice, vocabulary, self._phonemizer)

    def encode(self, text: str) -> list[int]:
        """Symbol ids of ``text``; unknown symbols map to ``<unk>``."""
        if self.vocabulary is None:
            raise ConfigError("the frontend has no vocabulary yet: call fit(texts) first")
        return self.vocabulary.ids(self.symbols(text))

    def to_dict(self) -> dict[str, Any]:
        symbols = list(self.vocabulary.symbols) if self.vocabulary else None
        return {"kind": self.kind, "voice": self.voice, "symbols": symbols}

    @classmethod
    def from_dict(cls, data: dict[str, Any], phonemizer: Phonemizer | None = None) -> Frontend:
        unknown = set(data) - {"kind", "voice", "symbols"}
        if unknown:
            raise ConfigError(f"unknown frontend keys: {sorted(unknown)}")
        symbols = data.get("symbols")
        vocabulary = Vocabulary(tuple(symbols)) if symbols is not None else None
        return cls(data.get("kind", "espeak"), data.get("voice", "en-us"), vocabulary, phonemizer)
