"""master_chapter on real espeak chunks: ACX on the delivered MP3, cues, parts, errors, bounded
memory on a long chapter, and an object store (S3 API)."""

from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest

from audio_synth_core.mastering import (
    MasteringError,
    MasteringSettings,
    Segment,
    build_m4b,
    check_file,
    encode_mp3,
    master_chapter,
    webvtt,
)
from audio_synth_core.store.storage import Store
from tests.core.mastering import PAUSES, SENTENCES, write_chunks

STEM = "books/demo/run/masters/01-the-river"


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path / "out"))


def test_chapter_meets_every_acx_rule_on_the_encoded_mp3(store):
    segments = write_chunks(store)
    settings = MasteringSettings()
    (part,) = master_chapter(store, segments, STEM, settings)
    assert part.flac_rel == f"{STEM}.flac"
    assert part.sha256 == hashlib.sha256(store.read_bytes(part.flac_rel)).hexdigest()

    encoded = encode_mp3(store, part.flac_rel, f"{STEM}.mp3", {"title": "The River", "track": 1})
    mp3 = check_file(store, encoded.rel)
    assert mp3.passed, mp3.rules
    assert all(rule["margin"] >= 0 for rule in mp3.rules.values())
    assert mp3.rules["rms_db"]["margin"] > 1.5  # aimed at the middle of -23..-18
    assert mp3.rules["true_peak_db"]["margin"] > 0.2  # the limiter's margin survives MP3
    assert mp3.rules["noise_floor_db"]["value"] < -65
    flac = check_file(store, part.flac_rel)
    assert flac.passed, flac.rules
    # The levels reported while writing are the master's, as decoded.
    for key in ("rms_db", "true_peak_db", "noise_floor_db", "head_s", "tail_s", "duration_s"):
        assert part.levels[key] == pytest.approx(flac.measurements[key], abs=0.01), key
    assert part.duration_s == pytest.approx(encoded.duration_s, abs=1e-6)

    # One cue per chunk; the gaps between them are the requested pauses.
    assert [c.text for c in part.cues] == list(SENTENCES)
    assert part.cues[0].start_s == pytest.approx(settings.head_s, abs=1e-6)
    for cue, nxt, pause in zip(part.cues, part.cues[1:], PAUSES, strict=False):
        assert cue.end_s > cue.start_s
        assert nxt.start_s - cue.end_s == pytest.approx(pause, abs=1e-4)
    assert part.duration_s - part.cues[-1].end_s == pytest.approx(settings.tail_s, abs=1e-4)
    assert webvtt(part.cues).count(" --> ") == len(SENTENCES)

    # Deterministic: the same chunks give the same master bytes.
    (again,) = master_chapter(store, segments, STEM + "-again", settings)
    assert again.sha256 == part.sha256


def test_silence_segments_add_pauses_but_never_touch_head_or_tail(store):
    chunks = write_chunks(store, SENTENCES[1:3], (0.35, 0.35))
    silence = Segment(None, "", 2.0)
    segments = [silence, chunks[0], silence, chunks[1], silence]
    settings = MasteringSettings(head_s=0.6, tail_s=1.5)
    (part,) = master_chapter(store, segments, STEM, settings)
    first, second = part.cues
    assert first.start_s == pytest.approx(0.6, abs=1e-6)
    assert second.start_s - first.end_s == pytest.approx(0.35 + 2.0, abs=1e-4)
    assert part.duration_s - second.end_s == pytest.approx(1.5, abs=1e-4)
    assert part.levels["head_s"] == pytest.approx(0.6, abs=0.05)


def test_long_chapter_is_split_into_parts_at_segment_boundaries(store):
    segments = write_chunks(store)
    settings = MasteringSettings(max_part_minutes=0.12)  # 7.2 s
    parts = master_chapter(store, segments, STEM, settings)
    assert len(parts) >= 2
    assert [p.flac_rel for p in parts] == [f"{STEM}-part{k + 1}.flac" for k in range(len(parts))]
    assert [i for p in parts for i in p.segment_indices] == list(range(len(segments)))
    assert [c.text for p in parts for c in p.cues] == list(SENTENCES)
    for p in parts:
        assert p.duration_s <= 7.2
        result = check_file(store, p.flac_rel)
        assert result.passed, (p.flac_rel, result.rules)
        assert p.cues[0].start_s == pytest.approx(settings.head_s, abs=1e-6)
    assert not store.exists(f"{STEM}.flac")


def test_bad_chunks_fail_the_chapter_naming_the_chunk(store):
    segments = write_chunks(store, SENTENCES[1:2], (0.35,))
    missing = Segment("chunks/nope.flac", "gone", 0.35)
    with pytest.raises(MasteringError, match=r"not found: .*chunks/nope\.flac"):
        master_chapter(store, [*segments, missing], STEM)
    store.write_bytes("chunks/junk.flac", b"not audio at all")
    with pytest.raises(MasteringError, match=r"chunks/junk\.flac"):
        master_chapter(store, [*segments, Segment("chunks/junk.flac", "junk", 0.3)], STEM)
    from audio_synth_core.audio import encode

    store.write_bytes("chunks/silent.flac", encode(np.zeros(22050, np.float32), 22050))
    with pytest.raises(MasteringError, match=r"silent: .*chunks/silent\.flac"):
        master_chapter(store, [*segments, Segment("chunks/silent.flac", "", 0.3)], STEM)
    with pytest.raises(MasteringError, match="no narrated audio"):
        master_chapter(store, [Segment(None, "", 1.0)], STEM)
    with pytest.raises(MasteringError, match="segment 0 alone is longer"):
        master_chapter(store, segments, STEM, MasteringSettings(max_part_minutes=0.01))
    with pytest.raises(MasteringError, match="pause_after_s"):
        Segment("chunks/000.flac", "x", -1.0)
    # Nothing half-written is visible: no master, no temporary file.
    assert store.list("books/demo/run/masters") == []


def test_long_chapter_keeps_memory_bounded(store):
    """A 10-minute chapter (repeated chunks) masters with a few MB of traced allocations, while
    the chapter as float32 samples would take 106 MB."""
    chunks = write_chunks(store, SENTENCES[1:3], (0.35, 0.9))
    segments = [chunks[i % 2] for i in range(int(10 * 60 / 3.1))]
    tracemalloc.start()
    try:
        (part,) = master_chapter(store, segments, STEM)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    chapter_float32 = part.duration_s * 44100 * 4
    assert part.duration_s > 9.5 * 60
    assert peak < chapter_float32 / 6, (peak, chapter_float32)
    assert part.levels["rms_db"] == pytest.approx(-20.0, abs=0.5)
    assert len(part.cues) == len(segments)


@pytest.mark.slow
def test_chapter_on_s3(s3_server, s3_bucket):
    store = Store(f"s3://{s3_bucket}/out")
    segments = write_chunks(store, SENTENCES[:2], PAUSES[:2])
    (part,) = master_chapter(store, segments, STEM)
    encoded = encode_mp3(store, part.flac_rel, f"{STEM}.mp3", {"title": "One"})
    assert store.exists(part.flac_rel) and store.exists(encoded.rel)
    assert hashlib.sha256(store.read_bytes(encoded.rel)).hexdigest() == encoded.sha256
    assert hashlib.sha256(store.read_bytes(part.flac_rel)).hexdigest() == part.sha256
    result = check_file(store, encoded.rel)
    assert result.passed, result.rules
    (mark,) = build_m4b(store, [("One", part.flac_rel)], "books/demo/run/book.m4b", {})
    assert mark.end_s == pytest.approx(part.duration_s)
    assert store.exists("books/demo/run/book.m4b")


@pytest.mark.parametrize(
    ("lengths", "expected"),
    [
        # (audio s, pause s) per segment; parts of at most 10 s, no head or tail
        ([(4, 1), (4, 1), (4, 1)], [[0, 1], [2]]),  # 4 + 1 + 4 = 9 fits, + 1 + 4 = 14 does not
        ([(5, 0), (5, 9), (0, 3)], [[0, 1, 2]]),  # trailing pauses never count
        ([(3, 1), (0, 5), (3, 0)], [[0, 1], [2]]),  # a silence segment's pause counts inside
        ([(0, 5), (10, 1), (10, 1)], [[0, 1], [2]]),  # leading silence gives way to the head
    ],
)
def test_plan_parts_splits_between_segments_within_budget(lengths, expected):
    from audio_synth_core.mastering.assembly import _Item, plan_parts

    scaled = [_Item(i, a * 8000, p * 8000, float(a)) for i, (a, p) in enumerate(lengths)]
    settings = MasteringSettings(
        sample_rate_hz=8000, head_s=0.0, tail_s=0.0, max_part_minutes=10 / 60
    )
    parts = plan_parts(scaled, settings)
    assert [[it.index for it in part] for part in parts] == expected
