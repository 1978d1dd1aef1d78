"""Embedding and detection on real espeak speech, through the deliverable chain."""

from __future__ import annotations

import io
from functools import cache

import av
import numpy as np
import pytest

from audio_synth_core import audio
from audio_synth_core.watermark import (
    THRESHOLD_Z,
    WatermarkKey,
    WatermarkSettings,
    detect,
    mark,
    payload_codec,
)
from audio_synth_core.watermark.files import decode_any
from tests.factories import SENTENCES, speech

KEY = WatermarkKey(bytes(range(32)))
OTHER = WatermarkKey(bytes(range(1, 33)))
SETTINGS = WatermarkSettings(KEY)
ITEM = "0123456789abcdef0123"
PAYLOAD = payload_codec.payload_of(ITEM)


@cache
def marked(text: str, voice: str) -> tuple[np.ndarray, np.ndarray, int]:
    clean, rate = speech(text, voice)
    return clean, mark(clean, rate, SETTINGS, ITEM)[0], rate


def snr_db(clean: np.ndarray, marked_: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(clean**2) / np.sum((marked_ - clean) ** 2)))


@pytest.mark.parametrize(
    ("text", "voice"),
    [
        (SENTENCES[0] + " " + SENTENCES[1], "en-us"),
        (SENTENCES[2], "en-us+f3"),
        ("Diese Lampe ist leise und sparsam, und sie hält viele Jahre.", "de"),
    ],
)
def test_marked_speech_is_detected_with_its_payload_and_stays_quiet(text, voice):
    clean, marked_, rate = marked(text, voice)
    assert marked_.dtype == np.float32 and len(marked_) == len(clean)
    assert snr_db(clean, marked_) >= 35.0
    found = detect(marked_, rate, KEY)
    assert found.detected and found.z > THRESHOLD_Z and found.confidence > 0.999
    assert found.payload == PAYLOAD


@pytest.mark.parametrize("voice", ["en-us", "de"])
def test_unmarked_speech_and_another_key_are_not_detected(voice):
    clean, marked_, rate = marked(SENTENCES[3] + " " + SENTENCES[4], voice)
    for samples, key in ((clean, KEY), (marked_, OTHER)):
        found = detect(samples, rate, key)
        assert not found.detected and found.payload is None
        assert found.z < THRESHOLD_Z


def mp3(samples: np.ndarray, rate: int, kbps: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = kbps * 1000
        pcm = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in (*stream.encode(frame), *stream.encode(None)):
            out.mux(packet)
    return buf.getvalue()


def test_the_mark_survives_flac_and_mp3_192_kbps():
    _, marked_, rate = marked(SENTENCES[0] + " " + SENTENCES[5], "en-us")
    for data in (audio.encode(marked_, rate, "flac"), mp3(marked_, rate, 192)):
        samples, got_rate = decode_any(data)
        found = detect(samples, got_rate, KEY)
        assert found.detected and found.payload == PAYLOAD


def test_the_mark_survives_the_acx_mastering_chain():
    chain = pytest.importorskip("audio_synth_core.mastering.chain")
    _, marked_, rate = marked(SENTENCES[0] + " " + SENTENCES[5], "en-us")
    mastered, out_rate = chain.master_array(marked_, rate)
    assert out_rate == 44100
    found = detect(mastered, out_rate, KEY)
    assert found.detected and found.payload == PAYLOAD


def test_a_three_second_window_still_carries_sync_and_payload():
    clean, rate = speech(" ".join(SENTENCES[:4]), "en-us")
    marked_ = mark(clean, rate, SETTINGS, ITEM)[0]
    start = int(1.37 * rate)  # not on a chip or block boundary
    found = detect(marked_[start : start + 3 * rate], rate, KEY)
    assert found.detected and found.payload == PAYLOAD


def test_silence_and_tiny_clips_pass_through_unmarked():
    rate = 22050
    silence = np.zeros(rate, dtype=np.float32)
    assert np.array_equal(mark(silence, rate, SETTINGS, ITEM)[0], silence)
    blip = np.full(100, 0.1, dtype=np.float32)
    assert np.array_equal(mark(blip, rate, SETTINGS, ITEM)[0], blip)
    assert not detect(silence, rate, KEY).detected


def test_the_key_never_shows_in_reprs():
    secret = KEY.secret.hex()
    for text in (repr(KEY), str(KEY), repr(SETTINGS), SETTINGS.marks):
        assert secret not in text
        assert KEY.fingerprint in text or text == repr(KEY)
    assert WatermarkSettings(OTHER).marks != SETTINGS.marks
