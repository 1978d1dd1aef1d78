"""IntelligibilityValidator: pocketsphinx with an LM of the run's texts, on real espeak speech."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from audio_synth_core.validators.base import Clip, ValidationContext
from audio_synth_core.validators.intelligibility import (
    IntelligibilityValidator,
    error_rates,
    normalize_words,
)
from tests import factories as f

# The run's texts: the factory sentences plus others that only serve as LM competition, so the
# decoder has plausible wrong answers to choose from (as in a real run).
OTHER_TEXTS = [
    "The train to the city leaves from platform four at noon.",
    "He forgot his umbrella in the back of the taxi.",
    "Fresh bread is baked here every morning before dawn.",
    "The children built a small castle out of wet sand.",
    "Turn left at the second traffic light and park behind the bank.",
    "My grandmother keeps her letters in a wooden box.",
    "The meeting was moved to Thursday afternoon.",
    "A cold wind blew across the empty harbour.",
    "This jacket comes in blue, green and dark grey.",
    "The doctor asked him to rest for a few days.",
    "We watched the sun go down behind the hills.",
    "Add two spoons of sugar and stir the mixture slowly.",
    "The museum has a large collection of old maps.",
    "Their flight was delayed by almost three hours.",
    "Please keep your ticket until the end of the journey.",
    "The cat slept all afternoon on the warm window sill.",
    "The river flooded the fields after the heavy rain.",
    "She painted the kitchen a bright shade of yellow.",
    "Every room in the hotel has a view of the sea.",
    "Our team won the final match by a single goal.",
]
TEXTS = [*f.SENTENCES, *OTHER_TEXTS]
SPOKEN = [f.SENTENCES[0], f.SENTENCES[1], f.SENTENCES[2]]


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, np.ndarray, int]]:
    return [(text, *f.speech(text)) for text in SPOKEN]


@pytest.fixture(scope="module")
def validator() -> IntelligibilityValidator:
    v = IntelligibilityValidator()
    v.prepare(ValidationContext(texts=TEXTS))
    return v


def measure(v, text, audio, rate, **attributes):
    return v.measure(Clip("x", audio, rate, text=text, attributes=attributes))


def test_clean_speech_is_understood(validator, clips):
    for text, audio, rate in clips:
        metrics = measure(validator, text, audio, rate)
        assert set(metrics) == {fl.name for fl in validator.fields}
        assert metrics["asr_status"] == "ok"
        assert metrics["wer"] <= 0.15, metrics
        assert metrics["cer"] <= metrics["wer"] + 0.05
        assert 0 < metrics["asr_rtf"] < 1
        assert validator.check(metrics) == []


def test_wer_rises_with_noise(validator, clips):
    mean_wer = {}
    for snr in (None, 20, 10, 0):
        wers = []
        for text, audio, rate in clips:
            noisy = audio if snr is None else f.add_noise(audio, snr, seed=1)
            wers.append(measure(validator, text, noisy, rate)["wer"])
        mean_wer[snr] = float(np.mean(wers))
    assert mean_wer[None] <= mean_wer[20] + 0.05 <= mean_wer[10] + 0.1
    assert mean_wer[10] < mean_wer[0]
    assert mean_wer[0] >= 0.6, mean_wer
    assert mean_wer[None] <= 0.1, mean_wer


def test_audio_of_another_text_scores_high_wer(clips):
    """Speech of sentence A, decoded with an LM of texts without A, is caught.

    How high the WER goes depends on how many of A's words the other texts share (a sentence
    ending "in the morning every day" among texts with "every morning" scores ~0.6); these
    sentences share few, as in STACK.md's measurement.
    """
    wers = []
    for text, audio, rate in clips:
        v = IntelligibilityValidator()
        v.prepare(ValidationContext(texts=[t for t in TEXTS if t != text]))
        metrics = measure(v, text, audio, rate)
        assert v.check(metrics)[0].check == "max_wer"
        wers.append(metrics["wer"])
    assert float(np.mean(wers)) > 0.8, wers


def test_mislabelled_clip_fails(validator, clips):
    (_, audio, rate), (other_text, _, _) = clips[0], clips[1]
    metrics = measure(validator, other_text, audio, rate)
    assert metrics["wer"] > 0.8
    (result,) = validator.check(metrics)
    assert "wer" in result.message and "above maximum 0.4" in result.message


def test_decoding_is_independent_of_order(validator, clips):
    (text_a, audio_a, rate), (text_b, audio_b, _) = clips[0], clips[1]
    noisy = f.add_noise(audio_a, 10, seed=2)
    first = measure(validator, text_a, noisy, rate)["asr_text"]
    measure(validator, text_b, audio_b, rate)
    assert measure(validator, text_a, noisy, rate)["asr_text"] == first


def test_not_measured_clips_pass(validator, clips):
    text, audio, rate = clips[0]
    for metrics, status in [
        (measure(validator, text, audio, rate, language="de"), "not_english"),
        (validator.measure(Clip("x", audio, rate, text=None)), "no_text"),
        (validator.measure(Clip("x", audio, rate, text=" ... ")), "no_text"),
    ]:
        assert metrics["asr_status"] == status
        assert metrics["wer"] is None and metrics["asr_text"] is None
        assert validator.check(metrics) == []
    assert measure(validator, text, audio, rate, language="en-GB")["asr_status"] == "ok"


@pytest.mark.parametrize(
    "audio", [np.zeros(0, np.float32), np.array([np.nan] * 100, np.float32)], ids=["empty", "nan"]
)
def test_unreadable_audio_fails(validator, audio):
    metrics = validator.measure(Clip("x", audio, 16000, text="hello there"))
    assert metrics["wer"] is None and metrics["asr_status"] == "unreadable_audio"
    (result,) = validator.check(metrics)
    assert result.check == "max_wer" and result.value is None


def test_without_prepare_the_clip_text_is_the_lm(clips):
    text, audio, rate = clips[2]
    metrics = measure(IntelligibilityValidator(), text, audio, rate)
    assert metrics["wer"] <= 0.15


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("The quick, brown fox!", ["the", "quick", "brown", "fox"]),
        ("Don’t stop—now", ["don't", "stop", "now"]),
        ("It costs 3.50 at 10:30.", ["it", "costs", "3.50", "at", "10:30"]),
        ("well-known CAFÉ", ["well", "known", "café"]),
        ("  ", []),
    ],
)
def test_normalize_words(text, words):
    assert normalize_words(text) == words


def test_error_rates_ignore_case_and_punctuation():
    assert error_rates("Hello, World!", "hello world") == (0.0, 0.0)
    assert error_rates("a b c d", "a x c")[0] == pytest.approx(0.5)
    assert error_rates("...", "anything") == (None, None)


def test_params():
    with pytest.raises(ValueError, match="'max_cer'"):
        IntelligibilityValidator(max_cer=0.1)
    v = IntelligibilityValidator(max_wer=0.25)
    assert pickle.loads(pickle.dumps(v)).params == {"max_wer": 0.25}
