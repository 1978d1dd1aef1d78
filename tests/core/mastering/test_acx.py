"""ACX measurements and rules: streaming equals whole, known signals, bad files fail the right
rules with negative margins (decoded from real FLAC and MP3 files)."""

from __future__ import annotations

import numpy as np
import pytest

from audio_synth_core.audio import encode
from audio_synth_core.mastering import AcxMeter, check_file, master_array, measure
from audio_synth_core.mastering.acx import frame_kbps
from audio_synth_core.mastering.chain import RoomTone
from audio_synth_core.store.storage import Store
from tests.core.mastering import SENTENCES, narrated

RATE = 44100


def known_signal() -> np.ndarray:
    """0.7 s room tone, 3 s of a -20 dB RMS tone over it, 2 s room tone (-70 dB)."""
    t = np.arange(3 * RATE) / RATE
    tone = (0.1 * np.sqrt(2) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    floor = RoomTone(RATE, -70.0, seed=0).next(int(5.7 * RATE))
    start = int(0.7 * RATE)
    floor[start : start + tone.size] += tone
    return floor


def test_measure_known_signal():
    m = measure(known_signal(), RATE)
    assert m["duration_s"] == pytest.approx(5.7)
    assert m["rms_db"] == pytest.approx(10 * np.log10(0.01 * 3 / 5.7), abs=0.02)
    assert m["true_peak_db"] == pytest.approx(-17.0, abs=0.1)  # plus the room tone
    assert m["noise_floor_db"] == pytest.approx(-70.0, abs=0.7)
    assert m["head_s"] == pytest.approx(0.7, abs=0.011)
    assert m["tail_s"] == pytest.approx(2.0, abs=0.011)
    assert m["digital_silence_s"] < 0.001


@pytest.mark.parametrize(("block", "seconds"), [(7, 1.2), (100, 5.7), (7919, 5.7), (RATE, 5.7)])
def test_streaming_meter_equals_one_block(block, seconds):
    x = known_signal()
    x[RATE : RATE + 2000] = 0.0  # a run of digital zero spanning block boundaries
    x = x[: int(seconds * RATE)]
    whole = measure(x, RATE)
    meter = AcxMeter(RATE)
    for i in range(0, x.size, block):
        meter.push(x[i : i + block])
    streamed = meter.result()
    assert streamed.keys() == whole.keys()
    for key, value in whole.items():
        assert streamed[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert whole["digital_silence_s"] == pytest.approx(2000 / RATE)


@pytest.mark.parametrize(
    ("header", "kbps"),
    [("fffbb2c4", 192), ("fffb90c4", 128), ("fff3b2c4", 112), ("00000000", None), ("ff", None)],
)
def test_mp3_frame_header_bit_rate(header, kbps):
    assert frame_kbps(bytes.fromhex(header)) == kbps


def test_bad_flac_fails_the_right_rules(tmp_path):
    """Too loud and clipped speech with digital silence at 22.05 kHz."""
    speech, rate = narrated(SENTENCES[1])
    loud = np.clip(speech / np.abs(speech).max() * 10.0, -1.0, 1.0)
    bad = np.concatenate([np.zeros(int(0.2 * rate)), loud, np.zeros(int(0.3 * rate))])
    store = Store(str(tmp_path))
    store.write_bytes("bad.flac", encode(bad.astype(np.float32), rate))
    result = check_file(store, "bad.flac")
    failed = {k for k, r in result.rules.items() if not r["passed"]}
    assert failed == {
        "rms_db",
        "true_peak_db",
        "digital_silence_s",
        "sample_rate_hz",
        "head_s",
        "tail_s",
    }
    assert result.passed is False
    for rule in failed:
        assert result.rules[rule]["margin"] < 0, rule
    assert result.rules["sample_rate_hz"]["value"] == 22050
    assert result.rules["sample_rate_hz"]["margin"] == -22050
    assert result.rules["true_peak_db"]["value"] >= -0.1  # clipped at full scale
    assert result.rules["rms_db"]["value"] > -18
    # Digital zero counts as "under -60 dB", which is why digital_silence_s is its own rule.
    assert result.rules["noise_floor_db"]["passed"]
    assert "bit_rate_kbps" not in result.rules


def test_mp3_at_the_wrong_bit_rate_and_layout_fails_those_rules(tmp_path):
    import av

    speech, rate = narrated(SENTENCES[2])
    mastered, out_rate = master_array(speech, rate)
    path = tmp_path / "stereo128.mp3"
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=out_rate, layout="stereo")
        stream.bit_rate = 128_000
        pcm = np.stack([mastered, mastered])
        frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = out_rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    result = check_file(Store(str(tmp_path)), "stereo128.mp3")
    failed = {k for k, r in result.rules.items() if not r["passed"]}
    assert failed == {"bit_rate_kbps", "channels"}
    assert result.rules["bit_rate_kbps"]["value"] == 128
    assert result.rules["bit_rate_kbps"]["margin"] == -64
    assert result.rules["channels"]["margin"] == -1


@pytest.mark.parametrize(
    ("rates", "value", "margin", "passed"),
    [
        ([192], 192, 0.0, True),
        ([256], 256, 64.0, True),  # ACX: 192 kbps or higher
        ([128], 128, -64.0, False),
        ([192, 256, 320], [192, 256, 320], -128.0, False),  # VBR
        ([128, 192], [128, 192], -64.0, False),
    ],
)
def test_bit_rate_rule(rates, value, margin, passed):
    from audio_synth_core.mastering.acx import _bit_rate_rule

    rule = _bit_rate_rule(rates)
    assert (rule["value"], rule["margin"], rule["passed"]) == (value, margin, passed)
