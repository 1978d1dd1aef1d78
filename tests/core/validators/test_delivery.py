"""DeliveryValidator (ACX) and conform() on real espeak speech."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from audio_synth_core.audio import resample
from audio_synth_core.validators.base import Clip
from audio_synth_core.validators.delivery import (
    PROFILES,
    DeliveryValidator,
    conform,
    noise_floor_dbfs,
    room_tone_s,
)
from tests import factories as f

RATE = 44100


@pytest.fixture(scope="module")
def validator() -> DeliveryValidator:
    return DeliveryValidator()


@pytest.fixture(scope="module")
def raw() -> list[tuple[np.ndarray, int]]:
    return [f.speech(f.SENTENCES[0]), f.speech(" ".join(f.SENTENCES[4:6]), "en-us+f3")]


@pytest.fixture(scope="module")
def conformed(raw) -> list[np.ndarray]:
    out = []
    for audio, rate in raw:
        audio, new_rate = conform(audio, rate)
        assert new_rate == RATE
        out.append(audio)
    return out


def failed(validator, audio, rate=RATE) -> set[str]:
    return {r.check for r in validator.check(validator.measure(Clip("x", audio, rate)))}


def test_conformed_speech_passes_acx(validator, conformed):
    for audio in conformed:
        metrics = validator.measure(Clip("x", audio, RATE))
        assert set(metrics) == {fl.name for fl in validator.fields}
        assert validator.check(metrics) == [], metrics
        assert -23.0 <= metrics["rms_dbfs"] <= -18.0
        assert metrics["peak_dbfs"] <= -3.0
        assert 0.5 <= metrics["head_room_tone_s"] <= 1.0
        assert 1.0 <= metrics["tail_room_tone_s"] <= 5.0


def test_conformed_speech_survives_16_bit_encoding(validator, conformed):
    from audio_synth_core.audio import decode, encode

    audio, rate = decode(encode(conformed[0], RATE, "flac"))
    assert failed(validator, audio, rate) == set()


def test_raw_espeak_fails_acx_for_the_right_reasons(validator, raw):
    audio, rate = raw[0]
    results = {r.check: r for r in validator.check(validator.measure(Clip("x", audio, rate)))}
    # 22.05 kHz, espeak's near-full-scale peaks, no room tone: the whole clip is speech, so its
    # quietest 0.5 s (the noise floor) is speech too. The RMS is already in range.
    assert set(results) == {
        "acx.sample_rate_hz",
        "acx.max_peak_dbfs",
        "acx.min_head_room_tone_s",
        "acx.min_tail_room_tone_s",
        "acx.max_noise_floor_dbfs",
    }
    assert results["acx.sample_rate_hz"].message == (
        "sample_rate_hz 22050 is not ACX's 44100 (off by -22050 Hz)"
    )


def _pad(audio, head_s=0.0, tail_s=0.0):
    return np.concatenate(
        [np.zeros(int(head_s * RATE), np.float32), audio, np.zeros(int(tail_s * RATE), np.float32)]
    )


def _trim_tail(audio, keep_s):
    _head, tail = room_tone_s(audio, RATE)
    return audio[: audio.size - int((tail - keep_s) * RATE)]


DEGRADATIONS = {
    "quiet": (lambda a: f.with_gain(a, -4.0), {"acx.min_rms_dbfs"}),
    "loud": (lambda a: f.with_gain(a, 3.0), {"acx.max_rms_dbfs", "acx.max_peak_dbfs"}),
    "one_spike": (
        lambda a: np.where(np.arange(a.size) == a.size // 2, np.float32(0.9), a),
        {"acx.max_peak_dbfs"},
    ),
    "noisy_floor": (
        lambda a: a + f.white_noise(a.size / RATE, RATE, dbfs=-50.0, seed=4),
        {"acx.max_noise_floor_dbfs"},
    ),
    "long_head": (lambda a: _pad(a, head_s=1.0), {"acx.max_head_room_tone_s"}),
    "short_tail": (lambda a: _trim_tail(a, 0.4), {"acx.min_tail_room_tone_s"}),
}


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_degraded_copies_fail_the_right_rules(validator, conformed, name):
    degrade, expected = DEGRADATIONS[name]
    for audio in conformed:
        assert failed(validator, degrade(audio).astype(np.float32)) == expected


def test_wrong_sample_rate_fails_only_that_rule(validator, conformed):
    audio = resample(conformed[0], RATE, 48000)
    assert failed(validator, audio, 48000) == {"acx.sample_rate_hz"}


def test_messages_say_rule_value_limit_and_miss(validator, conformed):
    audio = f.with_gain(conformed[0], -6.0)
    (result,) = validator.check(validator.measure(Clip("x", audio, RATE)))
    assert result.check == "acx.min_rms_dbfs"
    assert result.limit == -23.0
    assert result.message == (
        f"rms_dbfs {result.value:.4g} below ACX minimum -23 by {-23.0 - result.value:.3g} dB"
    )


def test_duration_limit_is_checked(validator, conformed):
    metrics = validator.measure(Clip("x", conformed[0], RATE))
    over = {**metrics, "duration_s": 121 * 60.0}
    (result,) = validator.check(over)
    assert result.check == "acx.max_duration_s" and "by 60 s" in result.message


def test_noise_floor_and_room_tone_measurements():
    tone = f.tone(seconds=2.0, rate=RATE, dbfs=-20.0)
    clip = np.concatenate(
        [
            f.white_noise(0.7, RATE, dbfs=-70.0, seed=1),
            tone,
            f.white_noise(2.0, RATE, dbfs=-70.0, seed=2),
        ]
    )
    assert noise_floor_dbfs(clip, RATE) == pytest.approx(-70.0, abs=0.5)
    head, tail = room_tone_s(clip, RATE)
    assert head == pytest.approx(0.7, abs=0.011)
    assert tail == pytest.approx(2.0, abs=0.011)


def test_conform_is_stable_and_rejects_what_it_cannot_fix(validator, conformed):
    again, rate = conform(conformed[0], RATE)
    assert rate == RATE and failed(validator, again) == set()
    with pytest.raises(ValueError, match="empty audio"):
        conform(np.zeros(0, np.float32), RATE)
    with pytest.raises(ValueError, match="silent"):
        conform(f.silence(1.0, RATE), RATE)


def test_unmeasurable_audio(validator):
    metrics = validator.measure(Clip("x", np.zeros(0, np.float32), RATE))
    assert set(metrics.values()) == {None}
    (result,) = validator.check(metrics)
    assert result.check == "acx.audio"


def test_params():
    assert "acx" in PROFILES
    with pytest.raises(ValueError, match="unknown delivery profile 'bbc'; known: acx"):
        DeliveryValidator(profile="bbc")
    with pytest.raises(ValueError, match="'target'"):
        DeliveryValidator(target="acx")
    v = DeliveryValidator(profile="acx")
    assert pickle.loads(pickle.dumps(v)).params == {"profile": "acx"}
