"""Pronunciations of the ASR dictionary: IPA -> ARPAbet, and cmudict / espeak-ng / guess fallbacks."""

from __future__ import annotations

import pytest

from audio_synth_core.validators.pronunciation import ipa_to_arpabet, pronunciations


@pytest.mark.parametrize(
    ("ipa", "arpabet"),
    [
        ("h_ə_l_ˈoʊ", "HH AH L OW"),
        ("k_ˈɛ_ɾ_əl", "K EH T AH L"),
        ("n_ˈaɪ_n", "N AY N"),
        ("tʃ_ˈɜː_tʃ", "CH ER CH"),
        ("ð_ə θ_ˈɪ_ŋ", "DH AH TH IH NG"),
    ],
)
def test_ipa_to_arpabet(ipa, arpabet):
    assert ipa_to_arpabet(ipa) == arpabet


def test_pronunciations_cover_words_missing_from_cmudict():
    prons = pronunciations(["the", "litre", "9", "zxqv"])
    assert prons["the"] == ("DH AH", "DH IY")  # cmudict, every variant
    assert prons["litre"] == ("L IY T ER",)  # espeak-ng: British spelling
    assert prons["9"] == ("N AY N",)  # espeak-ng reads digits
    assert prons["zxqv"]  # always something decodable
