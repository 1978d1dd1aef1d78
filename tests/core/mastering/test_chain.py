"""The ACX chain: true-peak limiter, room tone, gain, on real espeak speech and on tones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from audio_synth_core.errors import ConfigError
from audio_synth_core.mastering import MasteringError, MasteringSettings, master_array, measure
from audio_synth_core.mastering.chain import RoomTone, limit_true_peaks, true_peak_envelope
from tests.core.mastering import SENTENCES, narrated

RATE = 44100


def quarter_rate_tone(seconds: float = 2.0, amplitude: float = 0.99) -> np.ndarray:
    """A tone at fs/4 sampled 45 degrees off its crests: every sample is 3 dB under the true
    peak, the classic inter-sample over a sample-peak limiter misses."""
    n = np.arange(int(seconds * RATE))
    return (amplitude * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)


def in_blocks(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[i : i + size] for i in range(0, x.size, size)]


def test_true_peak_envelope_matches_4x_resample_poly():
    x = np.random.default_rng(1).standard_normal(20000).astype(np.float32) * 0.1
    reference = np.abs(resample_poly(x, 4, 1)).reshape(-1, 4)
    reference[:, 0] = np.abs(x)  # resample_poly scales the on-sample phase by ~1.002
    np.testing.assert_allclose(true_peak_envelope(x), reference.max(axis=1), atol=1e-5)


def test_limiter_catches_inter_sample_peaks_and_streams_exactly():
    tone = quarter_rate_tone()
    before = measure(tone, RATE)
    assert before["sample_peak_db"] == pytest.approx(-3.1, abs=0.05)
    assert before["true_peak_db"] == pytest.approx(-0.09, abs=0.15)  # filter ripple
    whole = np.concatenate(list(limit_true_peaks([tone], RATE, -3.5)))
    after = measure(whole, RATE)
    assert after["true_peak_db"] <= -3.5 + 1e-3
    assert after["sample_peak_db"] <= -6.4  # a sample-peak limiter would have stopped at -3.5
    # Odd block sizes, one smaller than the look-ahead: the same samples as one block.
    for size in (RATE // 3 + 7, 300):
        streamed = np.concatenate(list(limit_true_peaks(in_blocks(tone, size), RATE, -3.5)))
        np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_limiter_leaves_audio_under_the_ceiling_alone():
    tone = quarter_rate_tone(amplitude=0.5)  # true peak -6 dBFS
    (out,) = limit_true_peaks([tone], RATE, -3.5)
    assert out is tone


def test_room_tone_is_deterministic_shaped_noise_at_its_level():
    a = RoomTone(RATE, -70.0, seed=3).next(RATE * 2)
    b = RoomTone(RATE, -70.0, seed=3).next(RATE * 2)
    c = RoomTone(RATE, -70.0, seed=4).next(RATE * 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    rms_db = 20 * np.log10(np.sqrt(np.mean(np.square(a, dtype=np.float64))))
    assert rms_db == pytest.approx(-70.0, abs=0.5)
    spectrum = np.abs(np.fft.rfft(a)) ** 2
    freqs = np.fft.rfftfreq(a.size, 1 / RATE)
    band = spectrum[(freqs > 200) & (freqs < 4000)].mean()
    assert spectrum[freqs > 15000].mean() < band / 100  # shaped, not white hiss
    assert np.count_nonzero(a) == a.size


@pytest.mark.parametrize("level_db", [0.0, -35.0])
def test_master_array_meets_acx_from_any_level(level_db):
    speech, rate = narrated(" ".join(SENTENCES[1:3]))
    assert rate == 22050
    speech = np.clip(speech / np.abs(speech).max() * 10 ** (level_db / 20), -1, 1)
    settings = MasteringSettings()
    out, out_rate = master_array(speech, rate, settings)
    m = measure(out, out_rate)
    assert out_rate == 44100 and out.dtype == np.float32
    assert m["rms_db"] == pytest.approx(-20.0, abs=0.5)
    assert m["true_peak_db"] <= settings.true_peak_ceiling_db + 0.01
    assert -72.0 < m["noise_floor_db"] < -68.0  # the room tone: quiet, never digital zero
    assert m["digital_silence_s"] < 0.01
    assert m["head_s"] == pytest.approx(settings.head_s, abs=0.06)
    assert m["tail_s"] == pytest.approx(settings.tail_s, abs=0.06)
    # Exact 16-bit values: what the FLAC master holds.
    np.testing.assert_array_equal(np.rint(out * 32768) / 32768, out)


def test_master_array_is_deterministic():
    speech, rate = narrated(SENTENCES[1])
    a, _ = master_array(speech, rate)
    b, _ = master_array(speech, rate)
    c, _ = master_array(speech, rate, MasteringSettings(seed=1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_silent_input_is_refused():
    with pytest.raises(MasteringError, match="silent"):
        master_array(np.zeros(22050, np.float32), 22050)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("target_rms_db", -2.0, "below true_peak_ceiling_db"),
        ("true_peak_ceiling_db", 0.5, "must be below 0"),
        ("room_tone_db", -20.0, "room_tone_db"),
        ("max_part_minutes", 0.0, "max_part_minutes"),
        ("head_s", -1.0, "head_s"),
    ],
)
def test_bad_settings_name_the_field(field, value, words):
    with pytest.raises(ConfigError, match=words):
        MasteringSettings(**{field: value})
