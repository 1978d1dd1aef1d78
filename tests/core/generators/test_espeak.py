"""EspeakGenerator against the real libespeak-ng shipped by espeakng-loader (engine, voice table
and generator: ``generators.espeak``, ``espeak_engine``, ``espeak_voices``, ``espeak_statics``)."""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import subprocess
import sys

import numpy as np
import pytest

from audio_synth_core.errors import GenerationError, UnknownVoiceError
from audio_synth_core.generators.base import SynthesisRequest, build_generator
from audio_synth_core.generators.espeak import EspeakGenerator

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def gen() -> EspeakGenerator:
    return EspeakGenerator()


def speak(gen: EspeakGenerator, text: str = SENTENCE, voice: str = "en-us") -> np.ndarray:
    (audio,) = gen.generate([SynthesisRequest(text=text, voice=voice)])
    assert isinstance(audio, np.ndarray), audio
    return audio


def digest(audio: np.ndarray) -> str:
    return hashlib.sha256(audio.tobytes()).hexdigest()


def f0_hz(audio: np.ndarray, rate: int) -> float:
    """Median autocorrelation pitch of the loudest 40 ms frames (60-400 Hz)."""
    n = int(0.04 * rate)
    frames = audio[: len(audio) // n * n].reshape(-1, n).astype(np.float64)
    loud = frames[np.argsort((frames**2).mean(axis=1))[-len(frames) // 3 :]]
    lags = np.arange(rate // 400, rate // 60)
    pitches = []
    for frame in loud:
        ac = np.correlate(frame, frame, mode="full")[n - 1 :]
        pitches.append(rate / lags[np.argmax(ac[lags])])
    return float(np.median(pitches))


def test_engine_facts(gen: EspeakGenerator) -> None:
    assert gen.sample_rate_hz == 22050
    assert gen.version.startswith("1.52")
    assert gen.describe()["name"] == "espeak"
    assert gen.describe()["params"]["rate_wpm"] == 175


def test_voices_listing(gen: EspeakGenerator) -> None:
    voices = gen.voices()
    names = [v.name for v in voices]
    assert len(voices) > 100
    assert len(set(names)) == len(names)
    assert {"en-us", "en-gb", "de", "fr-fr", "es", "it", "pt-br", "cmn"} <= set(names)
    assert all(v.language and v.attributes["identifier"] for v in voices)
    # Every listed name resolves to itself.
    assert all(gen.resolve_voice(n, None).name == n for n in names)


def test_variants(gen: EspeakGenerator) -> None:
    variants = {v.name: v for v in gen.variants()}
    assert len(variants) > 100
    assert variants["f3"].gender == "female"
    assert variants["m7"].gender == "male"
    assert {"m1", "m8", "f1", "f5", "klatt", "whisper"} <= set(variants)


@pytest.mark.parametrize(
    ("voice", "language", "name", "identifier", "gender"),
    [
        ("en-gb", None, "en-gb", "gmw/en", "male"),  # espeak_SetVoiceByName("en-gb") fails
        ("en", None, "en-gb", "gmw/en", "male"),
        ("fr", None, "fr-fr", "roa/fr", "male"),
        ("gmw/en-US", None, "en-us", "gmw/en-US", "male"),
        ("en-us+F3", None, "en-us+f3", "gmw/en-US", "female"),
        ("de+m7", None, "de+m7", "gmw/de", "male"),
        (None, "de", "de", "gmw/de", "male"),
        (None, "de_DE", "de", "gmw/de", "male"),
        (None, "pt-BR", "pt-br", "roa/pt-BR", "male"),
        (None, "en", "en-gb", "gmw/en", "male"),
    ],
)
def test_resolve_voice(
    gen: EspeakGenerator,
    voice: str | None,
    language: str | None,
    name: str,
    identifier: str,
    gender: str,
) -> None:
    info = gen.resolve_voice(voice, language)
    assert (info.name, info.attributes["identifier"], info.gender) == (name, identifier, gender)


def test_sentence_sounds_plausible(gen: EspeakGenerator) -> None:
    audio = speak(gen)
    duration_s = len(audio) / gen.sample_rate_hz
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.5 <= duration_s <= 6.0
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 0.01


@pytest.mark.parametrize(
    ("voice", "text"),
    [
        ("en-gb", SENTENCE),
        ("en-us+f3", SENTENCE),
        ("en-us+klatt", SENTENCE),
        ("de", "Der schnelle braune Fuchs springt über den faulen Hund."),
        ("fr-fr", "Le renard brun rapide saute par-dessus le chien paresseux."),
    ],
)
def test_voices_speak(gen: EspeakGenerator, voice: str, text: str) -> None:
    audio = speak(gen, text, voice)
    assert 1.0 <= len(audio) / gen.sample_rate_hz <= 8.0
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 0.01


def test_rate_changes_duration_monotonically() -> None:
    durations = [len(speak(EspeakGenerator(rate_wpm=r))) for r in (100, 175, 300, 450)]
    assert durations == sorted(durations, reverse=True)
    assert len(set(durations)) == 4


def test_pitch_changes_f0(gen: EspeakGenerator) -> None:
    low = f0_hz(speak(EspeakGenerator(pitch=10)), gen.sample_rate_hz)
    high = f0_hz(speak(EspeakGenerator(pitch=90)), gen.sample_rate_hz)
    assert high > 1.3 * low


# Variants with breath noise (f3, whisper), Klatt synthesis and non-English voices: the cases
# where espeak's carried state or random numbers used to change the output.
DETERMINISM_VOICES = [
    "en-us",
    "en-us+f3",
    "en-us+m7",
    "en-us+klatt",
    "en-us+whisper",
    "de",
    "fr-fr",
]
DETERMINISM_TEXTS = [
    "Please call me back after lunch on Tuesday.",
    "She sells sea shells by the sea shore.",
    "Our store opens at nine in the morning every day.",
    "A gentle breeze moved the tall grass near the river.",
    "Remember to water the plants before you leave.",
]
_SUBPROCESS = """
import hashlib, json, sys
from audio_synth_core.generators.base import SynthesisRequest
from audio_synth_core.generators.espeak import EspeakGenerator
items = json.loads(sys.argv[1])
out = EspeakGenerator().generate([SynthesisRequest(text=t, voice=v) for t, v in items])
print(json.dumps([hashlib.sha256(a.tobytes()).hexdigest() for a in out]))
"""


def test_deterministic_across_orders_and_processes() -> None:
    gen = EspeakGenerator()
    other = EspeakGenerator(rate_wpm=300, pitch=80, pitch_range=10, word_gap_10ms=5)
    items = [(t, v) for t in DETERMINISM_TEXTS for v in DETERMINISM_VOICES]
    runs = []
    for seed in (1, 2):
        order = items[:]
        random.Random(seed).shuffle(order)
        hashes = {}
        for text, voice in order:
            hashes[(text, voice)] = digest(speak(gen, text, voice))
            # Interleave other parameters and the phonemizer: nothing may leak into the next call.
            speak(other, text[::-1], voice)
            gen.phonemes(text, voice)
        runs.append(hashes)
    assert runs[0] == runs[1]

    fresh = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS, json.dumps(items[::-1])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(fresh.stdout) == [runs[0][item] for item in items[::-1]]


def test_unknown_voice_or_language_is_a_per_request_error(gen: EspeakGenerator) -> None:
    out = gen.generate(
        [
            SynthesisRequest(text=SENTENCE, voice="xx-nope"),
            SynthesisRequest(text=SENTENCE, voice="en-us+nope"),
            SynthesisRequest(text=SENTENCE, voice="", language="zz"),
            SynthesisRequest(text=SENTENCE, voice=""),
            SynthesisRequest(text="Still fine.", voice="en-us"),
        ]
    )
    assert isinstance(out[0], UnknownVoiceError) and "xx-nope" in str(out[0])
    assert isinstance(out[1], UnknownVoiceError) and "nope" in str(out[1])
    assert isinstance(out[2], UnknownVoiceError) and "zz" in str(out[2])
    assert isinstance(out[3], UnknownVoiceError)
    assert isinstance(out[4], np.ndarray) and out[4].size > 0


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_a_generation_error(gen: EspeakGenerator, text: str) -> None:
    (out,) = gen.generate([SynthesisRequest(text=text, voice="en-us")])
    assert isinstance(out, GenerationError)
    assert "empty text" in str(out)


def test_pickle_round_trip() -> None:
    gen = EspeakGenerator(rate_wpm=220, pitch=40)
    clone = pickle.loads(pickle.dumps(gen))
    assert clone.params == gen.params
    assert digest(speak(clone)) == digest(speak(gen))


def test_built_from_entry_point() -> None:
    gen = build_generator("espeak", {"rate_wpm": 200})
    assert isinstance(gen, EspeakGenerator)
    assert gen.params["rate_wpm"] == 200


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"speed": 200}, "'speed'"),
        ({"rate_wpm": 20}, "rate_wpm"),
        ({"rate_wpm": 1000}, "rate_wpm"),
        ({"pitch": 100}, "pitch"),
        ({"pitch_range": -1}, "pitch_range"),
        ({"volume": 201}, "volume"),
        ({"word_gap_10ms": -1}, "word_gap_10ms"),
        ({"pitch": "high"}, "pitch"),
        ({"pitch": True}, "pitch"),
        ({"pitch": 50.5}, "pitch"),
    ],
)
def test_bad_params_are_rejected_by_name(params: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        EspeakGenerator(**params)


def test_whole_float_settings_are_recorded_as_integers() -> None:
    # YAML and JSON numbers may arrive as floats; the recorded parameters (and so item ids) and
    # the audio are those of the integer.
    gen = EspeakGenerator(rate_wpm=200.0)
    assert gen.params["rate_wpm"] == 200 and isinstance(gen.params["rate_wpm"], int)
    assert digest(speak(gen)) == digest(speak(EspeakGenerator(rate_wpm=200)))


def test_phonemes(gen: EspeakGenerator) -> None:
    ipa = gen.phonemes("Hello world. How are you?", "en-us")
    assert ipa == gen.phonemes("Hello world. How are you?", "en-us")
    words = ipa.split(" ")
    assert len(words) == 5
    assert words[0].startswith("h") and "ˈ" in words[0]
    assert gen.phonemes("Hello world", "en-us", separator="_").split(" ")[0].count("_") >= 2
    assert gen.phonemes("Guten Tag", "de").split(" ")[0].startswith("ɡ")
    with pytest.raises(UnknownVoiceError):
        gen.phonemes("Hello", "xx-nope")
