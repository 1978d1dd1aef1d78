"""Anonymization transforms and the attacker evaluation, on real flite (recorded-speaker) and
espeak-ng speech. Needs the Debian package ``flite``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio_synth_core.errors import ConfigError
from audio_synth_core.privacy import attack as privacy_eval
from audio_synth_core.privacy import speaker
from audio_synth_core.privacy.attack import Utterance, flite_available, flite_speech
from audio_synth_core.transforms import anonymize
from tests.factories import SENTENCES, silence, speech

needs_flite = pytest.mark.skipif(
    not flite_available(), reason="flite is not installed (apt-get install flite)"
)


@pytest.fixture(scope="module")
def slt() -> list[tuple[np.ndarray, int]]:
    return [flite_speech(text, "slt") for text in SENTENCES[:4]]


def _rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))))


@needs_flite
def test_mcadams_keeps_length_and_level(slt):
    audio, rate = slt[0]
    out = anonymize.mcadams(audio, rate, 0.8)
    assert out.dtype == np.float32 and out.shape == audio.shape
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 0.99
    _assert_level_kept(out, audio)
    assert not np.allclose(out, audio, atol=1e-3)


def _assert_level_kept(out: np.ndarray, audio: np.ndarray) -> None:
    """Input RMS kept, unless that would push peaks past 0.99: then the peak sits at 0.99."""
    peak = float(np.max(np.abs(out)))
    if peak < 0.989:
        assert _rms_db(out) == pytest.approx(_rms_db(audio), abs=0.1)
    else:
        assert peak == pytest.approx(0.99, abs=1e-3)
        assert _rms_db(out) > _rms_db(audio) - 6.0  # still clearly non-silent


def test_mcadams_on_espeak_and_on_silence():
    audio, rate = speech(SENTENCES[1], "en-us+f3")
    out = anonymize.mcadams(audio, rate, 0.8)
    assert out.shape == audio.shape
    _assert_level_kept(out, audio)
    quiet = anonymize.mcadams(silence(0.5, 22050), 22050)
    assert quiet.shape == (11025,) and np.all(np.isfinite(quiet)) and np.max(np.abs(quiet)) < 1e-5


def test_alpha_one_is_nearly_transparent():
    # alpha 1 leaves every pole where it was: analysis + resynthesis alone must not change much.
    audio, rate = speech(SENTENCES[0])
    out = anonymize.mcadams(audio, rate, 1.0)
    err = np.sqrt(np.mean((out - audio) ** 2)) / np.sqrt(np.mean(audio**2))
    assert err < 0.05


@needs_flite
@pytest.mark.parametrize("level", sorted(anonymize.PRIVACY_LEVELS))
def test_levels_are_deterministic_per_seed(slt, level: str):
    audio, rate = slt[1]
    out1, p1 = anonymize.anonymize(audio, rate, level, np.random.default_rng(7))
    out2, p2 = anonymize.anonymize(audio, rate, level, np.random.default_rng(7))
    assert p1 == p2 and json.loads(json.dumps(p1)) == p1
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(anonymize.apply_params(audio, rate, p1), out1)
    assert out1.shape == audio.shape
    if level != "low":  # random draws: another seed, other parameters
        _, p3 = anonymize.anonymize(audio, rate, level, np.random.default_rng(8))
        assert p3 != p1


@pytest.mark.parametrize(
    ("spec", "method", "keys"),
    [
        ("low", "mcadams", {"alpha"}),
        ("medium", "mcadams", {"alpha"}),
        ("high", "shift_mcadams", {"shift", "alpha"}),
        ({"method": "none"}, "none", set()),
        ({"method": "mcadams_random", "alpha_min": 0.7, "alpha_max": 0.7}, "mcadams", {"alpha"}),
    ],
)
def test_draw_params(spec, method: str, keys: set[str]):
    params = anonymize.draw_params(spec, np.random.default_rng(0))
    assert params["method"] == method and set(params) - {"method"} == keys
    if isinstance(spec, dict) and spec.get("alpha_min") == 0.7:
        assert params["alpha"] == 0.7  # a collapsed range gives the exact value


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("extreme", "unknown privacy level"),
        ({"method": "robot"}, "unknown anonymization method"),
        ({"method": "mcadams", "alpha": 0.8, "beta": 1}, "beta"),
        ({"method": "mcadams_random", "alpha_min": 0.9, "alpha_max": 0.5}, "greater than"),
    ],
)
def test_bad_specs_are_rejected(spec, problem: str):
    with pytest.raises(ConfigError, match=problem):
        anonymize.draw_params(spec, np.random.default_rng(0))


@needs_flite
def test_anonymization_lowers_similarity_to_the_speaker(slt):
    centroid = speaker.centroid(speaker.embed_many([a for a, _ in slt[:3]], slt[0][1]))
    audio, rate = slt[3]
    before = speaker.cosine_similarity(speaker.embed(audio, rate), centroid)
    assert before > 0.85
    for level, limit in (("low", 0.8), ("medium", 0.8), ("high", 0.75)):
        out, _ = anonymize.anonymize(audio, rate, level, np.random.default_rng(3))
        after = speaker.cosine_similarity(speaker.embed(out, rate), centroid)
        assert after < limit, (level, after)


@pytest.mark.parametrize(
    ("scores", "labels", "eer"),
    [
        ([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0], 0.0),
        ([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 1.0),
        ([0.9, 0.3, 0.6, 0.1], [1, 1, 0, 0], 0.5),
    ],
)
def test_equal_error_rate(scores, labels, eer: float):
    assert privacy_eval.equal_error_rate(np.array(scores), np.array(labels)) == pytest.approx(eer)


@needs_flite
def test_evaluation_table_shows_anonymization_raises_eer():
    texts = SENTENCES[:4]
    utts = [Utterance(v, *flite_speech(t, v), t) for v in privacy_eval.FLITE_VOICES for t in texts]
    wer_fn = privacy_eval.pocketsphinx_wer(texts)
    table = privacy_eval.evaluate(
        utts, {"none": {"method": "none"}, "medium": "medium"}, n_enroll=2, wer_fn=wer_fn
    )
    expected = {"eer_orig", "eer_ignorant", "eer_lazy_informed", "wer_before", "wer_after", "rtf"}
    assert expected <= set(table.columns)
    none, medium = table.loc["none"], table.loc["medium"]
    assert none.eer_orig == none.eer_ignorant == 0.0  # flite voices are fully identifiable
    assert medium.eer_ignorant > 0.1 and medium.eer_lazy_informed > none.eer_lazy_informed
    assert medium.similarity_to_original < 0.8
    assert 0.0 <= none.wer_before <= none.wer_after + 1e-9 and medium.wer_after >= 0.0
    assert medium.rtf < 1.0
