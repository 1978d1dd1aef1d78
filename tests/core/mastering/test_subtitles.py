"""WebVTT from cues: timestamps, escaping, empty cues."""

from __future__ import annotations

import pytest

from audio_synth_core.mastering import Cue, webvtt
from audio_synth_core.mastering.subtitles import timestamp


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "00:00:00.000"),
        (0.75, "00:00:00.750"),
        (61.2345, "00:01:01.234"),
        (3 * 3600 + 5.0006, "03:00:05.001"),
        (-0.01, "00:00:00.000"),
    ],
)
def test_timestamps(seconds, text):
    assert timestamp(seconds) == text


def test_document_numbers_and_escapes_cues():
    cues = [
        Cue(0.75, 2.5, "Fish & chips <cheap>"),
        Cue(2.5, 2.5, "zero length is dropped"),
        Cue(3.0, 4.0, "   "),
        Cue(4.0, 5.25, "two\n\nlines --> one"),
    ]
    assert webvtt(cues) == (
        "WEBVTT\n\n"
        "1\n00:00:00.750 --> 00:00:02.500\nFish &amp; chips &lt;cheap&gt;\n\n"
        "2\n00:00:04.000 --> 00:00:05.250\ntwo lines --&gt; one\n"
    )


def test_no_cues_is_a_valid_empty_document():
    assert webvtt([]) == "WEBVTT\n"
