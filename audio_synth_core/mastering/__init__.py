"""Audiobook mastering: chapters from narrated chunks, the ACX chain, retail encodings, ACX checks
of the delivered files, and subtitles. Core library: no Prefect, no storage layout decisions (the
caller passes the paths)."""

from audio_synth_core.mastering.acx import AcxMeter, AcxResult, check_file, measure
from audio_synth_core.mastering.assembly import Cue, MasteredPart, Segment, master_chapter
from audio_synth_core.mastering.chain import MasteringError, MasteringSettings, master_array
from audio_synth_core.mastering.encode import (
    ChapterMark,
    EncodedFile,
    build_m4b,
    encode_mp3,
    encode_retail,
)
from audio_synth_core.mastering.subtitles import webvtt

__all__ = [
    "AcxMeter",
    "AcxResult",
    "ChapterMark",
    "Cue",
    "EncodedFile",
    "MasteredPart",
    "MasteringError",
    "MasteringSettings",
    "Segment",
    "build_m4b",
    "check_file",
    "encode_mp3",
    "encode_retail",
    "master_array",
    "master_chapter",
    "measure",
    "webvtt",
]
