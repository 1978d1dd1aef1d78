"""MP3 (192 kbps CBR, 44.1 kHz, mono, ID3) and M4B (AAC, chapters, metadata), read back with
PyAV and mutagen."""

from __future__ import annotations

import hashlib

import av
import numpy as np
import pytest

from audio_synth_core.audio import encode
from audio_synth_core.errors import ConfigError
from audio_synth_core.mastering import (
    build_m4b,
    check_file,
    encode_mp3,
    encode_retail,
    master_array,
)
from audio_synth_core.store.storage import Store
from tests.core.mastering import SENTENCES, narrated


def write_master(store: Store, rel: str, text: str) -> int:
    """A mastered clip of ``text`` as a FLAC master; its length in samples."""
    speech, rate = narrated(text)
    mastered, out_rate = master_array(speech, rate)
    store.write_bytes(rel, encode(mastered, out_rate))
    return mastered.size


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path / "out"))


def test_mp3_is_cbr_192_mono_44k_with_id3_tags(store):
    from mutagen.id3 import ID3
    from mutagen.mp3 import MP3, BitrateMode

    n = write_master(store, "masters/03.flac", SENTENCES[1])
    tags = {"title": "Chapter Two", "album": "A Book", "author": "A. Writer", "track": "3/12"}
    encoded = encode_mp3(store, "masters/03.flac", "mp3/03.mp3", tags)
    path = store.path("mp3/03.mp3")
    data = store.read_bytes("mp3/03.mp3")
    assert encoded.bytes == len(data)
    assert encoded.sha256 == hashlib.sha256(data).hexdigest()
    assert encoded.duration_s == pytest.approx(n / 44100)

    info = MP3(path).info
    assert info.bitrate_mode == BitrateMode.CBR
    assert abs(info.bitrate - 192_000) < 500
    assert info.sample_rate == 44100
    assert info.channels == 1
    with av.open(path) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.codec.id == av.Codec("mp3", "r").id  # decoder mp3float
        assert stream.codec_context.sample_rate == 44100
        assert stream.codec_context.layout.nb_channels == 1
        decoded = sum(frame.samples for frame in container.decode(stream))
    assert decoded == n  # gapless: LAME's delay and padding are trimmed on decoding
    measured = check_file(store, "mp3/03.mp3").measurements
    assert measured["frame_kbps"] == [192] and measured["mp3_frames"] > 20

    id3 = ID3(path)
    assert id3.version[:2] == (2, 3)
    assert str(id3["TIT2"]) == "Chapter Two"
    assert str(id3["TALB"]) == "A Book"
    assert str(id3["TPE1"]) == "A. Writer"
    assert str(id3["TRCK"]) == "3/12"
    assert str(id3["TCON"]) == "Audiobook"


def test_mp3_rejects_unknown_tags_before_writing(store):
    write_master(store, "masters/01.flac", SENTENCES[1])
    with pytest.raises(ConfigError, match="unknown MP3 tags \\['colour'\\]"):
        encode_mp3(store, "masters/01.flac", "mp3/01.mp3", {"title": "x", "colour": "red"})
    with pytest.raises(ConfigError, match="track"):
        encode_mp3(store, "masters/01.flac", "mp3/01.mp3", {"track": "three"})
    with pytest.raises(ConfigError, match="bit rate 100 kbps"):
        encode_mp3(store, "masters/01.flac", "mp3/01.mp3", {}, bit_rate_kbps=100)
    assert not store.exists("mp3/01.mp3")
    assert store.list("mp3") == []  # no temporary file left behind


def test_m4b_has_chapters_titles_starts_and_metadata(store):
    from mutagen.mp4 import MP4

    titles = ["Opening Credits", "Chapter One", "Chapter Two"]
    lengths = [
        write_master(store, f"masters/{i}.flac", text)
        for i, text in enumerate([SENTENCES[0], SENTENCES[1], SENTENCES[2]])
    ]
    chapters = [(t, f"masters/{i}.flac") for i, t in enumerate(titles)]
    metadata = {"title": "A Book", "author": "A. Writer", "narrator": "espeak en-us"}
    marks = build_m4b(store, chapters, "book.m4b", metadata)
    starts = np.cumsum([0, *lengths]) / 44100
    assert [m.title for m in marks] == titles
    for mark, start, end in zip(marks, starts[:-1], starts[1:], strict=True):
        assert mark.start_s == pytest.approx(start, abs=1e-6)
        assert mark.end_s == pytest.approx(end, abs=1e-6)

    path = store.path("book.m4b")
    with av.open(path) as container:
        read = container.chapters()
        assert len(read) == 3
        for chapter, mark in zip(read, marks, strict=True):
            assert chapter["metadata"]["title"] == mark.title
            assert abs(float(chapter["start"] * chapter["time_base"]) - mark.start_s) < 0.05
            assert abs(float(chapter["end"] * chapter["time_base"]) - mark.end_s) < 0.05
        assert container.metadata["title"] == "A Book"
        assert container.metadata["artist"] == "A. Writer"
        assert container.metadata["album"] == "A Book"
        assert container.metadata["composer"] == "espeak en-us"
        assert container.metadata["genre"] == "Audiobook"
        assert container.metadata["major_brand"].strip() == "M4B"
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        assert stream.codec_context.sample_rate == 44100
        assert stream.codec_context.layout.nb_channels == 1
        assert float(stream.duration * stream.time_base) == pytest.approx(starts[-1], abs=0.05)
    mp4 = MP4(path)
    assert [c.title for c in mp4.chapters] == titles
    for chapter, start in zip(mp4.chapters, starts[:-1], strict=True):
        assert chapter.start == pytest.approx(start, abs=0.05)


def test_m4b_rejects_unknown_metadata(store):
    write_master(store, "masters/0.flac", SENTENCES[1])
    with pytest.raises(ConfigError, match="unknown M4B metadata"):
        build_m4b(store, [("One", "masters/0.flac")], "book.m4b", {"isbn": "123"})
    assert not store.exists("book.m4b")


def test_m4b_from_chapter_aac_is_a_stream_copy_on_the_masters_timeline(store):
    """Each chapter's AAC comes from the MP3's decode; the book copies those packets (no
    re-encode) and its markers stay within one AAC frame of the masters' timings."""
    texts = [SENTENCES[0], SENTENCES[1], SENTENCES[2], SENTENCES[1]]
    lengths = []
    for i, text in enumerate(texts):
        lengths.append(write_master(store, f"masters/{i}.flac", text))
        mp3, m4a = encode_retail(
            store, f"masters/{i}.flac", f"mp3/{i}.mp3", {"title": str(i)}, aac_rel=f"aac/{i}.m4a"
        )
        assert check_file(store, mp3.rel).passed
        assert m4a.duration_s == pytest.approx(lengths[-1] / 44100)
        assert m4a.sha256 == hashlib.sha256(store.read_bytes(m4a.rel)).hexdigest()
    titles = [f"Chapter {i}" for i in range(len(texts))]
    chapters = [(t, f"masters/{i}.flac") for i, t in enumerate(titles)]
    marks = build_m4b(store, chapters, "book.m4b", {"title": "A Book"}, aac=aac_rels(len(texts)))
    starts = np.cumsum([0, *lengths]) / 44100
    assert [m.title for m in marks] == titles
    for mark, start in zip(marks, starts[:-1], strict=True):
        assert abs(mark.start_s - start) < 1024 / 44100
    assert abs(marks[-1].end_s - starts[-1]) < 1024 / 44100
    with av.open(store.path("book.m4b")) as container:
        read = container.chapters()
        assert [c["metadata"]["title"] for c in read] == titles
        for chapter, mark in zip(read, marks, strict=True):
            assert abs(float(chapter["start"] * chapter["time_base"]) - mark.start_s) < 0.002
        assert container.metadata["major_brand"].strip() == "M4B"
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.codec_context.sample_rate == 44100
        decoded = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    assert abs(decoded.size - sum(lengths)) < 2048
    # No click where the copied chapters meet: room tone (-70 dB RMS) only, around each marker.
    for mark in marks[1:]:
        at = round(mark.start_s * 44100)
        assert 20 * np.log10(np.abs(decoded[at - 2048 : at + 2048]).max()) < -50


def aac_rels(n: int) -> list[str]:
    return [f"aac/{i}.m4a" for i in range(n)]
