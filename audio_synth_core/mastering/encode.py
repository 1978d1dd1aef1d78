"""Retail encodings of the FLAC masters, streamed frame by frame through PyAV (its wheels bundle
libmp3lame, the AAC encoder and the ipod/MP4 muxer: no system ffmpeg):

- ``encode_mp3``: 192 kbps CBR, 44.1 kHz, mono (ACX), with ID3v2.3 tags written by mutagen;
- ``build_m4b``: one AAC audiobook with chapter markers and metadata.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from audio_synth_core.errors import ConfigError
from audio_synth_core.mastering.chain import MASTER_RATE_HZ, MasteringError
from audio_synth_core.mastering.files import open_for_reading, sha256_file, staged_file

MP3_BIT_RATE = 192_000
MP3_CBR_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)  # MPEG-1 Layer III
M4B_BIT_RATE = 64_000  # AAC-LC mono: the usual audiobook rate, transparent for speech
GENRE = "Audiobook"
CHAPTER_TIME_BASE = Fraction(1, 1000)

# Tag names accepted by encode_mp3 -> ID3v2 frame (author and artist are the same frame).
ID3_FRAMES = {
    "title": "TIT2",
    "album": "TALB",
    "artist": "TPE1",
    "author": "TPE1",
    "album_artist": "TPE2",
    "narrator": "TCOM",
    "track": "TRCK",
    "genre": "TCON",
    "date": "TDRC",
    "year": "TDRC",
    "publisher": "TPUB",
    "copyright": "TCOP",
    "language": "TLAN",
    "comment": "COMM",
}
# Metadata names accepted by build_m4b -> the MP4 muxer's keys (©nam, ©ART, ...).
M4B_KEYS = {
    "title": ("title", "album"),
    "album": ("album",),
    "author": ("artist", "album_artist"),
    "artist": ("artist",),
    "album_artist": ("album_artist",),
    "narrator": ("composer",),
    "genre": ("genre",),
    "date": ("date",),
    "year": ("date",),
    "comment": ("comment",),
    "description": ("description",),
    "copyright": ("copyright",),
    "publisher": ("publisher",),
    "language": ("language",),
}


@dataclass(frozen=True)
class EncodedFile:
    rel: str
    duration_s: float
    sha256: str
    bytes: int


@dataclass(frozen=True)
class ChapterMark:
    title: str
    start_s: float
    end_s: float


def _unknown(keys: Iterable[str], known: Mapping[str, Any], what: str) -> None:
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}; known: {', '.join(sorted(known))}")


def _frames(sources: Iterable[Any], codec_format: str) -> Iterator[Any]:
    """Decoded frames of each source in turn, as 44.1 kHz mono ``codec_format`` frames with
    running timestamps in samples (one timeline across all sources)."""
    import av

    resampler = av.AudioResampler(format=codec_format, layout="mono", rate=MASTER_RATE_HZ)
    time_base = Fraction(1, MASTER_RATE_HZ)
    pts = 0
    for source in sources:
        with av.open(source) as inp:
            for frame in inp.decode(audio=0):
                for out in resampler.resample(frame):
                    out.pts, out.time_base = pts, time_base
                    pts += out.samples
                    yield out
    for out in resampler.resample(None):
        out.pts, out.time_base = pts, time_base
        pts += out.samples
        yield out


def _encode(out: Any, codec: str, bit_rate: int, sources: Iterable[Any], count: list[int]) -> None:
    _encode_many([(out, codec, bit_rate)], sources, count)


def _encode_many(
    outputs: Sequence[tuple[Any, str, int]], sources: Iterable[Any], count: list[int]
) -> None:
    """Each (container, codec, bit rate) of ``outputs`` encoded from ONE decode of ``sources``
    (the MP3 and the AAC of a chapter share the FLAC decoding). Every encoder takes planar
    float (LAME and FFmpeg's AAC both accept it), so one decoded frame feeds them all."""
    streams = []
    for out, codec, bit_rate in outputs:
        # FFmpeg's default AAC coder (twoloop) runs ~40x real time, "fast" ~170x; at 64 kbps
        # mono speech the difference is not audible.
        options = {"aac_coder": "fast"} if codec == "aac" else {}
        stream = out.add_stream(codec, rate=MASTER_RATE_HZ, layout="mono", options=options)
        stream.bit_rate = bit_rate
        if len(outputs) > 1:
            stream.codec_context.format = "fltp"
        streams.append((out, stream))
    for frame in _frames(sources, streams[0][1].codec_context.format.name):
        count[0] += frame.samples
        for out, stream in streams:
            for packet in stream.encode(frame):
                out.mux(packet)
    for out, stream in streams:
        for packet in stream.encode(None):
            out.mux(packet)


def _track(value: str | int, total: Any) -> str:
    text = str(value)
    if total is not None and "/" not in text:
        text = f"{text}/{total}"
    if not all(p.strip().isdigit() for p in text.split("/")) or text.count("/") > 1:
        raise ConfigError(f"track must be a number or 'n/total', got {value!r}")
    return text


def write_id3(path: str, tags: Mapping[str, str | int]) -> None:
    """ID3v2.3 tags (the version every player reads) on the MP3 at ``path``; genre defaults to
    "Audiobook"; ``track`` is ``3`` or ``"3/12"`` (``track_total`` adds the total)."""
    from mutagen.id3 import COMM, ID3, Frames

    tags = dict(tags)
    total = tags.pop("track_total", None)
    _unknown(tags, ID3_FRAMES, "MP3 tags")
    tags.setdefault("genre", GENRE)
    id3 = ID3()
    for key, value in tags.items():
        if value is None or value == "":
            continue
        frame_id = ID3_FRAMES[key]
        text = _track(value, total) if key == "track" else str(value)
        if frame_id == "COMM":
            id3.add(COMM(encoding=3, lang="eng", desc="", text=[text]))
        else:
            id3.add(Frames[frame_id](encoding=3, text=[text]))
    id3.save(path, v2_version=3)


def encode_mp3(
    store: Any,
    flac_rel: str,
    mp3_rel: str,
    tags: Mapping[str, str | int],
    *,
    bit_rate_kbps: int = MP3_BIT_RATE // 1000,
    aac_rel: str | None = None,
) -> EncodedFile:
    """The master ``flac_rel`` as a CBR (192 kbps: ACX's minimum), 44.1 kHz mono MP3 at
    ``mp3_rel`` with ID3 tags (title, album, artist/author, track "3/12", genre "Audiobook",
    ...). Streaming. With ``aac_rel``, the same decode also writes the chapter's AAC (an
    ``.m4a``, see ``encode_retail``)."""
    return encode_retail(
        store, flac_rel, mp3_rel, tags, bit_rate_kbps=bit_rate_kbps, aac_rel=aac_rel
    )[0]


def encode_retail(
    store: Any,
    flac_rel: str,
    mp3_rel: str,
    tags: Mapping[str, str | int],
    *,
    bit_rate_kbps: int = MP3_BIT_RATE // 1000,
    aac_rel: str | None = None,
) -> tuple[EncodedFile, EncodedFile | None]:
    """The MP3 of ``encode_mp3`` and, with ``aac_rel``, an AAC-LC (64 kbps, 44.1 kHz mono)
    ``.m4a`` of the same master from one decode: the packets ``build_m4b`` remuxes into the
    book, so the book's AAC is encoded per chapter (in parallel), never serially per book."""
    _unknown(set(tags) - {"track_total"}, ID3_FRAMES, "MP3 tags")
    if bit_rate_kbps not in MP3_CBR_KBPS:
        raise ConfigError(
            f"MP3 bit rate {bit_rate_kbps} kbps is not one of {', '.join(map(str, MP3_CBR_KBPS))}"
        )
    import av

    count = [0]
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_for_reading(store, flac_rel))
        mp3_tmp = stack.enter_context(staged_file(store, mp3_rel, ".mp3"))
        aac_tmp = stack.enter_context(staged_file(store, aac_rel, ".m4a")) if aac_rel else None
        # The muxer's own ID3 tag is left out: mutagen writes the one tag the file carries.
        mp3_out = stack.enter_context(
            av.open(mp3_tmp, "w", format="mp3", options={"id3v2_version": "0"})
        )
        outputs = [(mp3_out, "libmp3lame", bit_rate_kbps * 1000)]
        if aac_tmp is not None:
            outputs.append(
                (stack.enter_context(av.open(aac_tmp, "w", format="ipod")), "aac", M4B_BIT_RATE)
            )
        _encode_many(outputs, [source], count)
        for out, _, _ in outputs:
            out.close()
        write_id3(mp3_tmp, tags)
        mp3 = EncodedFile(
            mp3_rel, count[0] / MASTER_RATE_HZ, sha256_file(mp3_tmp), os.path.getsize(mp3_tmp)
        )
        aac = None
        if aac_tmp is not None:
            aac = EncodedFile(
                aac_rel, count[0] / MASTER_RATE_HZ, sha256_file(aac_tmp), os.path.getsize(aac_tmp)
            )
    return mp3, aac


def _durations(store: Any, chapters: Sequence[tuple[str, str]]) -> list[int]:
    """Each master's length in samples at the master rate, from its header (no decoding)."""
    import soundfile as sf

    lengths = []
    for title, rel in chapters:
        with open_for_reading(store, rel) as source:
            info = sf.info(source)
        if info.frames <= 0:
            raise MasteringError(f"chapter {title!r}: its master {store.uri(rel)} is empty")
        lengths.append(round(info.frames * MASTER_RATE_HZ / info.samplerate))
    return lengths


def build_m4b(
    store: Any,
    chapters: Sequence[tuple[str, str]],
    m4b_rel: str,
    metadata: Mapping[str, str],
    *,
    aac: Sequence[str] | None = None,
) -> list[ChapterMark]:
    """One M4B audiobook (AAC in an ipod/MP4 container) of ``chapters`` ((title, flac_rel), in
    order) with a chapter marker at each start and book metadata (title, author, narrator, ...).
    Returns each chapter's title, start_s and end_s as written. Streaming.

    With ``aac`` (each chapter's ``.m4a`` from ``encode_retail``, same order) the book is a
    stream copy of those packets: no decoding, no encoding. Without it, the masters are encoded
    here (one serial AAC encode of the whole book)."""
    import av

    if not chapters:
        raise MasteringError(f"no chapters for {m4b_rel}")
    _unknown(metadata, M4B_KEYS, "M4B metadata")
    if aac is not None and len(aac) != len(chapters):
        raise MasteringError(f"{m4b_rel}: {len(aac)} AAC files for {len(chapters)} chapters")
    lengths = _durations(store, chapters)
    tags = {"genre": GENRE}
    for key, value in metadata.items():
        for name in M4B_KEYS[key]:
            tags[name] = str(value)
    if aac is not None:
        return _remux_m4b(store, chapters, aac, lengths, m4b_rel, tags)
    marks, start = [], 0
    for (title, _), n in zip(chapters, lengths, strict=True):
        marks.append(ChapterMark(title, start / MASTER_RATE_HZ, (start + n) / MASTER_RATE_HZ))
        start += n

    def sources() -> Iterator[Any]:
        for _, rel in chapters:
            with open_for_reading(store, rel) as source:
                yield source

    count = [0]
    with staged_file(store, m4b_rel, ".m4b") as tmp:
        with av.open(tmp, "w", format="ipod", options={"brand": "M4B "}) as out:
            out.metadata.update(tags)
            out.set_chapters(_chapter_table(marks))
            _encode(out, "aac", M4B_BIT_RATE, sources(), count)
        if count[0] != start:  # before publishing: a wrong marker table is never delivered
            raise MasteringError(
                f"{m4b_rel}: decoded {count[0]} samples but the masters' headers say {start}"
            )
    return marks


def _chapter_table(marks: Sequence[ChapterMark]) -> list[dict[str, Any]]:
    return [
        {
            "id": i + 1,
            "start": round(m.start_s / CHAPTER_TIME_BASE),
            "end": round(m.end_s / CHAPTER_TIME_BASE),
            "time_base": CHAPTER_TIME_BASE,
            "metadata": {"title": m.title},
        }
        for i, m in enumerate(marks)
    ]


def _aac_packets(store: Any, rel: str) -> tuple[list[Any], bytes]:
    """The packets and the codec setup of one chapter's ``.m4a``. Packets are small (64 kbps: ~30 MB for 2 hours): a chapter's list fits
    in memory."""
    import av

    with open_for_reading(store, rel) as source, av.open(source) as inp:
        if not inp.streams.audio:
            raise MasteringError(f"{store.uri(rel)} has no audio stream")
        stream = inp.streams.audio[0]
        ctx = stream.codec_context
        if ctx.name != "aac" or ctx.sample_rate != MASTER_RATE_HZ or ctx.layout.nb_channels != 1:
            raise MasteringError(
                f"{store.uri(rel)}: expected AAC 44.1 kHz mono, got {ctx.name} "
                f"{ctx.sample_rate} Hz {ctx.layout.nb_channels} ch"
            )
        packets = [p for p in inp.demux(stream) if p.size]
        if not packets:
            raise MasteringError(f"{store.uri(rel)} holds no audio")
        return packets, bytes(ctx.extradata or b"")


def _remux_m4b(
    store: Any,
    chapters: Sequence[tuple[str, str]],
    aac: Sequence[str],
    lengths: Sequence[int],
    m4b_rel: str,
    tags: Mapping[str, str],
) -> list[ChapterMark]:
    """The book as one AAC stream copied from the chapters' ``.m4a`` files.

    Each chapter's AAC starts with one priming frame (encoder delay) and ends padded to a whole
    frame. The first chapter keeps its priming (the container's edit list hides it); later
    chapters drop it (it would be a gap). The padding makes the book run ahead of the masters'
    timeline by < 1 frame per chapter; once that lead reaches half a frame, the next chapter
    also drops its first frame of head room tone (23 ms of ACX's >= 0.5 s), so the markers stay
    within one frame (23 ms) of the masters' timings however many chapters the book has. The
    markers are where each chapter's audio really starts in the M4B."""
    import av

    first = _aac_packets(store, aac[0])
    frame, setup = int(first[0][0].duration or 1024), first[1]
    marks: list[ChapterMark] = []
    plan: list[int] = []  # leading packets dropped per chapter
    target = 0  # the chapter's start on the masters' timeline (samples)
    pts = 0  # the chapter's start in the book (samples)
    real_end = 0
    for k, ((title, _), rel, n) in enumerate(zip(chapters, aac, lengths, strict=True)):
        packets, extra = first if k == 0 else _aac_packets(store, rel)
        if extra != setup:
            raise MasteringError(f"{store.uri(rel)}: AAC settings differ from the first chapter's")
        held = (len(packets) - 1) * frame  # after the priming frame
        if held < n:
            raise MasteringError(f"{store.uri(rel)} holds {held} samples, its master {n}")
        skip = 0 if k == 0 else 1 + int(pts - target + held - n >= frame // 2)
        marks.append(ChapterMark(title, pts / MASTER_RATE_HZ, 0.0))
        plan.append(skip)
        real_end = pts + n - max(0, skip - 1) * frame
        pts += held - max(0, skip - 1) * frame
        target += n
    ends = [m.start_s for m in marks[1:]] + [real_end / MASTER_RATE_HZ]
    marks = [ChapterMark(m.title, m.start_s, e) for m, e in zip(marks, ends, strict=True)]
    with (
        staged_file(store, m4b_rel, ".m4b") as tmp,
        av.open(tmp, "w", format="ipod", options={"brand": "M4B "}) as out,
        open_for_reading(store, aac[0]) as source,
        av.open(source) as template,  # a stream template must belong to an open container
    ):
        out.metadata.update(tags)
        out.set_chapters(_chapter_table(marks))
        stream = out.add_stream_from_template(template.streams.audio[0])
        next_pts = -frame  # the first chapter's priming frame, hidden by the edit list
        for k, (rel, skip) in enumerate(zip(aac, plan, strict=True)):
            packets = first[0] if k == 0 else _aac_packets(store, rel)[0]
            kept = packets[skip:]
            for i, packet in enumerate(kept):
                last = k == len(plan) - 1 and i == len(kept) - 1
                packet.pts = packet.dts = next_pts
                packet.duration = real_end - next_pts if last else frame
                packet.time_base = Fraction(1, MASTER_RATE_HZ)
                packet.stream = stream
                out.mux(packet)
                next_pts += frame
            if k == 0:
                first = None  # free the first chapter's packets
    return marks
