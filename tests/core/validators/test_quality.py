"""QualityValidator on real espeak speech and degraded copies of it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from audio_synth_core.validators.base import Clip
from audio_synth_core.validators.quality import QualityValidator, limit_check, wada_snr_db
from tests import factories as f

VOICES = ("en-us", "en-us+f3", "en-gb")


@pytest.fixture(scope="module")
def clean() -> list[tuple[np.ndarray, int]]:
    """Three sentences, each in a different voice."""
    return [f.speech(text, voice) for text, voice in zip(f.SENTENCES[1:4], VOICES, strict=True)]


@pytest.fixture(scope="module")
def validator() -> QualityValidator:
    return QualityValidator()


def failed(validator: QualityValidator, audio: np.ndarray, rate: int) -> set[str]:
    return {r.check for r in validator.check(validator.measure(Clip("x", audio, rate)))}


def test_fields_match_measured_keys(validator, clean):
    audio, rate = clean[0]
    metrics = validator.measure(Clip("x", audio, rate))
    assert set(metrics) == {field.name for field in validator.fields}
    assert all(field.unit for field in validator.fields)


def test_clean_speech_passes(validator, clean):
    for audio, rate in clean:
        metrics = validator.measure(Clip("x", audio, rate))
        assert validator.check(metrics) == [], metrics
        assert metrics["snr_db"] == 100.0  # digital silence between words: no noise at all
        assert metrics["integrated_lufs"] is not None


# Each degradation must fail exactly its own rule(s) on every clean clip.
DEGRADATIONS = {
    "noise_10db": (lambda a, r: f.add_noise(a, 10.0), {"min_snr_db"}),
    "noise_0db": (lambda a, r: f.add_noise(a, 0.0), {"min_snr_db"}),
    "hard_clip_12db": (lambda a, r: f.hard_clip(a, 12.0), {"max_clipping_ratio"}),
    "added_silence": (
        lambda a, r: np.concatenate([a, f.silence(3.0, r)]),
        {"max_silence_ratio"},
    ),
    "dc_offset": (lambda a, r: f.with_dc(a, 0.05), {"max_abs_dc_offset"}),
    "low_level": (lambda a, r: f.with_gain(a, -20.0), {"min_rms_dbfs"}),
    "too_short": (lambda a, r: a[: int(0.3 * r)], {"min_duration_s"}),
    "too_long": (lambda a, r: np.tile(a, int(61 * r / a.size) + 1), {"max_duration_s"}),
}


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_degradations_fail_the_right_checks(validator, clean, name):
    degrade, expected = DEGRADATIONS[name]
    for audio, rate in clean:
        assert failed(validator, degrade(audio, rate), rate) == expected


def test_float_audio_over_full_scale_fails_peak(validator, clean):
    audio, rate = clean[0]
    # A few samples above 1.0 (would clip on encoding), too few for the clipping-ratio rule.
    x = audio * np.float32(1.05 / np.abs(audio).max())
    assert failed(validator, x, rate) == {"max_peak_dbfs"}


def test_failed_checks_say_value_limit_and_miss(validator, clean):
    audio, rate = clean[0]
    results = validator.check(validator.measure(Clip("x", f.with_gain(audio, -20.0), rate)))
    (result,) = results
    assert result.check == "min_rms_dbfs"
    assert result.limit == -35.0
    assert result.value == pytest.approx(-40.9, abs=1.0)
    assert "below minimum -35" in result.message
    assert f"by {-35.0 - result.value:.3g} dB" in result.message


def test_wada_snr_tracks_true_snr_and_is_monotone(clean):
    audio = np.concatenate([a for a, _ in clean])
    estimates = {snr: wada_snr_db(f.add_noise(audio, snr, seed=3)) for snr in (0, 10, 20, 30)}
    for snr in (0, 10, 20):
        assert estimates[snr] == pytest.approx(snr, abs=3.0), estimates
    # WADA's Gamma speech model saturates earlier on formant speech: 30 dB reads ~25 dB.
    assert estimates[30] == pytest.approx(30, abs=7.0), estimates
    ordered = [wada_snr_db(audio), estimates[30], estimates[20], estimates[10], estimates[0]]
    assert ordered == sorted(ordered, reverse=True)
    assert len(set(ordered)) == len(ordered)


def test_wada_snr_of_noise_and_silence():
    assert wada_snr_db(f.white_noise(2.0)) < -10.0  # pure Gaussian noise sits at the table floor
    assert wada_snr_db(f.silence(1.0)) is None


@pytest.mark.parametrize(
    "audio",
    [
        np.zeros(0, np.float32),
        np.array([0.1, np.nan, 0.2], np.float32),
        np.array([np.inf] * 100, np.float32),
        np.zeros((2, 100), np.float32),
    ],
    ids=["empty", "nan", "inf", "stereo"],
)
def test_unmeasurable_audio_gives_none_and_a_failed_check(validator, audio):
    metrics = validator.measure(Clip("x", audio, 16000))
    assert set(metrics.values()) == {None}
    (result,) = validator.check(metrics)
    assert result.check == "audio" and "empty or unreadable" in result.message


def test_digital_silence_fails_snr_and_silence(validator):
    assert failed(validator, f.silence(1.0), 16000) == {
        "min_snr_db",
        "max_silence_ratio",
        "min_rms_dbfs",
    }


def test_params_are_strict_and_recorded():
    with pytest.raises(ValueError, match="'min_snr'"):
        QualityValidator(min_snr=3)
    with pytest.raises(ValueError, match="min_snr_db"):
        QualityValidator(min_snr_db="loud")
    with pytest.raises(ValueError, match="exceeds"):
        QualityValidator(min_duration_s=10, max_duration_s=5)
    v = QualityValidator(min_snr_db=25)
    assert v.params["min_snr_db"] == 25.0
    assert v.params["max_clipping_ratio"] == 0.001  # defaults are recorded too
    assert pickle.loads(pickle.dumps(v)).params == v.params


def test_limit_check_rules():
    assert limit_check("min_x_db", "x_db", 5.0, 4.0) is None
    assert limit_check("max_x_db", "x_db", 3.0, 4.0) is None
    low = limit_check("min_x_db", "x_db", 2.5, 4.0, "dB", scope="ACX")
    assert low.message == "x_db 2.5 below ACX minimum 4 by 1.5 dB"
    assert limit_check("max_x_db", "x_db", None, 4.0).value is None
    with pytest.raises(ValueError):
        limit_check("x_db", "x_db", 1.0, 2.0)
