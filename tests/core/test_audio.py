import numpy as np
import pytest

from audio_synth_core import audio
from tests.factories import silence, tone, white_noise


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_encode_decode_round_trip_is_exact_at_16_bit(fmt):
    x = tone(seconds=0.5, rate=22050)
    data = audio.encode(x, 22050, fmt)
    y, rate = audio.decode(data)
    assert rate == 22050 and len(y) == len(x)
    assert np.max(np.abs(y - x)) <= 1 / 32768
    assert audio.encode(x, 22050, fmt) == data  # deterministic bytes


def test_levels_of_known_signals():
    lv = audio.levels(tone(dbfs=-12.0, seconds=2.0), 16000)
    assert lv.rms_dbfs == pytest.approx(-12.0, abs=0.05)
    assert lv.peak_dbfs == pytest.approx(-12.0 + 3.01, abs=0.05)
    assert lv.clipping_ratio == 0.0 and lv.silence_ratio == 0.0
    assert lv.integrated_lufs == pytest.approx(-12.0, abs=1.5)  # K-weighting near 440 Hz is ~0 dB
    quiet = np.concatenate([silence(1.0), white_noise(1.0, dbfs=-20)])
    assert audio.levels(quiet, 16000).silence_ratio == pytest.approx(0.5, abs=0.02)
    clipped = np.clip(tone(dbfs=0.0) * 4, -1, 1)
    assert audio.levels(clipped, 16000).clipping_ratio > 0.3
    empty = audio.levels(np.zeros(0, np.float32), 16000)
    assert empty.silence_ratio == 1.0 and empty.integrated_lufs is None
