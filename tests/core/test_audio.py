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


# -- fast levels against the reference meter and the old definitions ---------------------------


def _speech(seconds_of_silence: float = 0.0, gain_db: float = 0.0):
    from tests.factories import SENTENCES, speech, with_gain

    clip, rate = speech(" ".join(SENTENCES[:2]))
    clip = np.concatenate([with_gain(clip, gain_db), silence(seconds_of_silence, rate)])
    return clip, rate


LOUDNESS_CASES = {
    "speech": lambda: _speech(),
    "quiet speech": lambda: _speech(gain_db=-30.0),
    # Long silence after speech: the relative gate must drop the silent blocks.
    "speech then 4 s silence": lambda: _speech(seconds_of_silence=4.0),
    "tone 440 Hz 16 kHz": lambda: (tone(440.0, 2.0, 16000, -12.0), 16000),
    "tone 1 kHz 48 kHz": lambda: (tone(1000.0, 3.0, 48000, -20.0), 48000),
    # K-weighting matters here: the 38 Hz high-pass and the 1.5 kHz shelf.
    "tone 60 Hz": lambda: (tone(60.0, 2.0, 22050, -6.0), 22050),
    "tone 6 kHz": lambda: (tone(6000.0, 2.0, 44100, -18.0), 44100),
    "white noise": lambda: (white_noise(3.0, 44100, -30.0), 44100),
    "noise then tone": lambda: (
        np.concatenate([white_noise(1.5, 16000, -50.0), tone(300.0, 1.5, 16000, -10.0)]),
        16000,
    ),
    # One block only, and a length whose last block runs past the end.
    "short clip 0.45 s": lambda: (tone(440.0, 0.45, 44100, -12.0), 44100),
    "clip 1.07 s": lambda: (tone(440.0, 1.07, 22050, -12.0), 22050),
}


@pytest.mark.parametrize("case", sorted(LOUDNESS_CASES))
def test_integrated_lufs_agrees_with_pyloudnorm(case):
    import pyloudnorm

    clip, rate = LOUDNESS_CASES[case]()
    expected = pyloudnorm.Meter(rate).integrated_loudness(clip.astype(np.float64))
    assert audio.integrated_lufs(clip, rate) == pytest.approx(expected, abs=0.1)
    assert audio.levels(clip, rate).integrated_lufs == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize(
    "clip, rate",
    [
        (silence(2.0), 16000),  # pyloudnorm: -inf
        (white_noise(2.0, 16000, -95.0), 16000),  # every block under the -70 LUFS gate
        (tone(seconds=0.3), 16000),  # shorter than one 400 ms block: pyloudnorm refuses it
    ],
)
def test_integrated_lufs_is_none_where_pyloudnorm_has_no_value(clip, rate):
    import pyloudnorm

    if len(clip) >= 0.4 * rate:
        assert pyloudnorm.Meter(rate).integrated_loudness(clip.astype(np.float64)) == -np.inf
    assert audio.integrated_lufs(clip, rate) is None


def _old_levels(clip: np.ndarray, rate: int) -> tuple[float, float, float, float]:
    """peak, RMS, clipping and silence ratio exactly as audio.levels defined them before."""
    absolute = np.abs(clip)
    rms = float(np.sqrt(np.mean(np.square(clip, dtype=np.float64))))
    frames_db = 20.0 * np.log10(np.maximum(audio.frame_rms(clip, rate), 1e-10))
    return (
        audio.to_db(float(absolute.max())),
        audio.to_db(rms),
        float(np.mean(absolute >= audio.CLIP_LEVEL)),
        float(np.mean(frames_db < audio.SILENCE_DBFS)),
    )


@pytest.mark.parametrize(
    "name",
    ["speech", "tone", "clipped", "negative clip", "half silent", "tiny", "noise", "quiet dc"],
)
def test_level_stats_equal_the_old_definitions(name):
    from tests.factories import hard_clip

    clip = {
        "speech": lambda: _speech(seconds_of_silence=1.0)[0],
        "tone": lambda: tone(seconds=1.013),
        "clipped": lambda: hard_clip(tone(dbfs=-6.0)),
        "negative clip": lambda: np.minimum(tone(dbfs=0.0) * 3, 0.5).astype(np.float32),
        "half silent": lambda: np.concatenate([silence(1.0), white_noise(1.0, dbfs=-20)]),
        "tiny": lambda: tone(seconds=0.01),  # shorter than one 20 ms frame
        "noise": lambda: white_noise(2.0, dbfs=-55.0),
        "quiet dc": lambda: np.full(8000, 5e-4, np.float32),
    }[name]()
    lv = audio.levels(clip, 16000)
    peak, rms, clipping, silent = _old_levels(clip, 16000)
    assert lv.peak_dbfs == peak
    assert lv.rms_dbfs == pytest.approx(rms, abs=1e-9)
    assert lv.clipping_ratio == clipping and lv.silence_ratio == silent
    if name == "clipped" or name == "negative clip":
        assert lv.clipping_ratio > 0.1


def test_int16_fast_path_encodes_the_same_bytes_as_float():
    import io

    import soundfile as sf

    # Every int16 value, in random order, as the float32 that espeak's engine returns.
    values = np.random.default_rng(0).permutation(np.arange(-32768, 32768)).astype(np.int16)
    exact = values.astype(np.float32) / np.float32(32768)
    fractional = tone(seconds=0.5)
    for clip in (exact, fractional, _speech()[0]):
        for fmt, (container, subtype) in audio.FORMATS.items():
            buf = io.BytesIO()
            sf.write(buf, clip, 22050, format=container, subtype=subtype)  # the float path
            assert audio.encode(clip, 22050, fmt) == buf.getvalue()
    assert (
        audio.as_pcm16(exact).dtype == np.int16 and audio.as_pcm16(_speech()[0]).dtype == np.int16
    )
    assert audio.as_pcm16(fractional) is fractional  # not exact multiples of 1/32768
    assert audio.as_pcm16(np.ones(4, np.float32)).dtype == np.float32  # 1.0 is not an int16 value
