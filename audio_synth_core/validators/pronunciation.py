"""Pronunciations for the intelligibility validator's ASR dictionary (CMU ARPAbet phones).

cmudict (as shipped with pocketsphinx) first; for words it lacks (names, numbers, British
spellings) espeak-ng's own pronunciation, mapped from IPA to ARPAbet; else a letter-based guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache


@cache
def _cmudict() -> dict[str, tuple[str, ...]]:
    """cmudict as shipped with pocketsphinx: word -> its pronunciations (ARPAbet, no stress)."""
    from pocketsphinx import get_model_path

    prons: dict[str, list[str]] = {}
    with open(get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as fh:
        for line in fh:
            word, _, phones = line.strip().partition(" ")
            if not phones:
                continue
            word = re.sub(r"\(\d+\)$", "", word)
            prons.setdefault(word, []).append(phones.strip())
    return {w: tuple(p) for w, p in prons.items()}


# espeak-ng en-us IPA -> CMU ARPAbet (the 39 phones of the pocketsphinx en-us model). Longest
# match first; stress and length marks are dropped before lookup.
_IPA_TO_ARPABET = {
    "aɪə": "AY ER",
    "aɪɚ": "AY ER",
    "aʊɚ": "AW ER",
    "ɑːɹ": "AA R",
    "ɔːɹ": "AO R",
    "oːɹ": "AO R",
    "ɛɹ": "EH R",
    "ɪɹ": "IH R",
    "ʊɹ": "UH R",
    "iə": "IY AH",
    "aɪ": "AY",
    "aʊ": "AW",
    "eɪ": "EY",
    "oʊ": "OW",
    "əʊ": "OW",
    "ɔɪ": "OY",
    "tʃ": "CH",
    "dʒ": "JH",
    "əl": "AH L",
    "ɑː": "AA",
    "ɔː": "AO",
    "iː": "IY",
    "uː": "UW",
    "ɜː": "ER",
    "i": "IY",
    "ɪ": "IH",
    "ᵻ": "IH",
    "e": "EH",
    "ɛ": "EH",
    "æ": "AE",
    "a": "AE",
    "ɑ": "AA",
    "ɒ": "AA",
    "ɔ": "AO",
    "o": "OW",
    "ʊ": "UH",
    "u": "UW",
    "ʌ": "AH",
    "ə": "AH",
    "ɐ": "AH",
    "ɜ": "ER",
    "ɝ": "ER",
    "ɚ": "ER",
    "p": "P",
    "b": "B",
    "t": "T",
    "d": "D",
    "ɾ": "T",
    "ʔ": "T",
    "k": "K",
    "g": "G",
    "ɡ": "G",
    "f": "F",
    "v": "V",
    "θ": "TH",
    "ð": "DH",
    "s": "S",
    "z": "Z",
    "ʃ": "SH",
    "ʒ": "ZH",
    "h": "HH",
    "x": "HH",
    "ç": "HH",
    "m": "M",
    "n": "N",
    "ŋ": "NG",
    "l": "L",
    "ɫ": "L",
    "ɹ": "R",
    "r": "R",
    "w": "W",
    "ʍ": "W",
    "j": "Y",
}
_IPA_KEYS = sorted(_IPA_TO_ARPABET, key=len, reverse=True)
_IPA_DROP = re.compile("[ˈˌːˑ\u0329\u032f\u0361\u200d-]")
# Last resort when espeak cannot help: one phone per letter, enough to keep the word decodable.
# fmt: off
_LETTERS = dict(zip("abcdefghijklmnopqrstuvwxyz", [
    "AE", "B", "K", "D", "EH", "F", "G", "HH", "IH", "JH", "K", "L", "M", "N", "AA", "P", "K",
    "R", "S", "T", "AH", "V", "W", "K S", "Y", "Z",
], strict=True))
_DIGITS = [
    "Z IH R OW", "W AH N", "T UW", "TH R IY", "F AO R", "F AY V", "S IH K S", "S EH V AH N",
    "EY T", "N AY N",
]
# fmt: on


def ipa_to_arpabet(ipa: str) -> str:
    """Map espeak's IPA (phonemes optionally separated by '_' or spaces) to ARPAbet phones."""
    text = _IPA_DROP.sub("", ipa.replace("_", "").replace(" ", ""))
    phones: list[str] = []
    i = 0
    while i < len(text):
        for key in _IPA_KEYS:
            if text.startswith(key, i):
                phones.append(_IPA_TO_ARPABET[key])
                i += len(key)
                break
        else:
            i += 1  # a symbol with no English counterpart: skip it
    return " ".join(phones)


def _letter_guess(word: str) -> str:
    phones = [_LETTERS.get(ch) or (_DIGITS[int(ch)] if ch.isdigit() else "") for ch in word.lower()]
    return " ".join(p for p in phones if p)


def _espeak_pronunciations(words: Sequence[str]) -> dict[str, str]:
    """ARPAbet from espeak-ng's phonemizer (how the generator itself would say each word)."""
    if not words:
        return {}
    try:
        from audio_synth_core.generators.espeak import EspeakGenerator

        espeak = EspeakGenerator()
        out = {}
        for word in words:
            arpabet = ipa_to_arpabet(espeak.phonemes(word, "en-us", separator="_"))
            if arpabet:
                out[word] = arpabet
        return out
    except Exception:
        return {}


def pronunciations(words: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Every pronunciation of each word: cmudict, else espeak-ng, else a letter-based guess."""
    cmu = _cmudict()
    missing = sorted({w for w in words if w not in cmu})
    guessed = _espeak_pronunciations(missing)
    out: dict[str, tuple[str, ...]] = {}
    for word in words:
        if word in cmu:
            out[word] = cmu[word]
        elif word in guessed:
            out[word] = (guessed[word],)
        elif guess := _letter_guess(word):
            out[word] = (guess,)
    return out
