"""One chapter from its narrated chunks: joined with pauses, mastered to ACX, written as a 44.1 kHz
FLAC master (split into parts past ``max_part_minutes``), streamed in two passes.

Pass 1 reads each chunk once for its length and energy (after resampling and edge trimming), which
fixes the parts and each part's gain. Pass 2 reads the chunks again and streams them through the
chain (chain.render) into the FLAC writer and the ACX meter. Memory holds one chunk and a few
5 s blocks, whatever the chapter's length. If the limiter took more than RMS_TOLERANCE_DB off the
RMS, the part is rendered once more with the gain corrected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audio_synth_core.audio import AudioDecodeError, decode
from audio_synth_core.mastering.acx import AcxMeter
from audio_synth_core.mastering.chain import (
    DEFAULT_SETTINGS,
    MasteringError,
    MasteringSettings,
    energy,
    gain_for,
    prepare_clip,
    render,
)
from audio_synth_core.mastering.files import sha256_file, staged_file

RMS_TOLERANCE_DB = 0.5  # ACX allows -23..-18: +-0.5 dB around -20 keeps 1.5 dB of margin
MAX_RENDERS = 3

__all__ = [
    "Cue",
    "MasteredPart",
    "MasteringError",
    "MasteringSettings",
    "Segment",
    "master_chapter",
]


@dataclass(frozen=True)
class Segment:
    """One piece of a chapter, in reading order."""

    audio_rel: str | None  # a narrated chunk under the Store (FLAC/WAV, any rate); None: silence
    text: str  # what it says (for subtitles; "" for silence)
    pause_after_s: float  # silence after it (sentence ~0.35 s, paragraph ~0.9 s, title ~1.5 s)

    def __post_init__(self) -> None:
        if not (self.pause_after_s >= 0.0 and np.isfinite(self.pause_after_s)):
            raise MasteringError(f"pause_after_s must be >= 0, got {self.pause_after_s!r}")


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class MasteredPart:
    flac_rel: str  # the 44.1 kHz FLAC master written to the Store
    duration_s: float
    sha256: str
    cues: list[Cue]  # one per non-silent segment, times in the mastered file
    levels: dict  # ACX measurements of the master (acx.measure's keys)
    gain_db: float = 0.0  # the gain applied before the limiter
    segment_indices: list[int] = field(default_factory=list)  # which segments it holds


@dataclass
class _Item:
    index: int
    n_audio: int  # samples of prepared audio (0: a silence segment)
    n_pause: int
    energy: float


def _load(store: Any, rel: str, settings: MasteringSettings) -> np.ndarray:
    uri = store.uri(rel)
    try:
        audio, rate = decode(store.read_bytes(rel), source=uri)
    except FileNotFoundError:
        raise MasteringError(f"narrated chunk not found: {uri}") from None
    except AudioDecodeError as exc:
        raise MasteringError(str(exc)) from None
    clip = prepare_clip(audio, rate, settings)
    if clip.size == 0:
        raise MasteringError(f"narrated chunk is silent: {uri}")
    return clip


def _measure_items(
    store: Any, segments: Sequence[Segment], settings: MasteringSettings
) -> list[_Item]:
    """Pass 1: every segment's prepared length and energy."""
    rate = settings.sample_rate_hz
    items = []
    for i, seg in enumerate(segments):
        n_pause = round(seg.pause_after_s * rate)
        if seg.audio_rel is None:
            items.append(_Item(i, 0, n_pause, 0.0))
            continue
        clip = _load(store, seg.audio_rel, settings)
        items.append(_Item(i, clip.size, n_pause, energy(clip)))
    return items


def _content_samples(items: Sequence[_Item]) -> int:
    """From the first audio's start to the last audio's end (edge pauses give way to room tone)."""
    audio = [k for k, it in enumerate(items) if it.n_audio]
    if not audio:
        return 0
    first, last = audio[0], audio[-1]
    inner = items[first : last + 1]
    return sum(it.n_audio + it.n_pause for it in inner) - inner[-1].n_pause


def plan_parts(items: Sequence[_Item], settings: MasteringSettings) -> list[list[_Item]]:
    """Items grouped into parts of at most ``max_part_minutes`` (head and tail included), split
    only between segments. One pass: a chapter of thousands of chunks plans in milliseconds."""
    rate = settings.sample_rate_hz
    edges = round(settings.head_s * rate) + round(settings.tail_s * rate)
    budget = int(settings.max_part_minutes * 60.0 * rate) - edges
    parts: list[list[_Item]] = [[]]
    content = 0  # samples from the part's first audio to the end of its last audio
    after = 0  # pauses since the part's last audio (dropped if the part ends there)
    for it in items:
        if it.n_audio > budget:
            raise MasteringError(
                f"segment {it.index} alone is longer than max_part_minutes "
                f"({settings.max_part_minutes:g} min): split it into shorter chunks"
            )
        if it.n_audio and content and content + after + it.n_audio > budget:
            parts.append([])
            content = after = 0
        parts[-1].append(it)
        if it.n_audio:
            content = content + after + it.n_audio if content else it.n_audio
            after = it.n_pause
        elif content:
            after += it.n_pause
    return [p for p in parts if any(it.n_audio for it in p)]


def _pieces(
    store: Any,
    segments: Sequence[Segment],
    part: Sequence[_Item],
    settings: MasteringSettings,
    cues: list[Cue],
) -> Iterator[np.ndarray | int]:
    """Pass 2: head, each chunk and pause, tail; appends each chunk's cue as it goes."""
    rate = settings.sample_rate_hz
    audio = [k for k, it in enumerate(part) if it.n_audio]
    first, last = audio[0], audio[-1]
    position = round(settings.head_s * rate)
    yield position
    for k in range(first, last + 1):
        it = part[k]
        seg = segments[it.index]
        if it.n_audio:
            clip = _load(store, seg.audio_rel, settings)  # type: ignore[arg-type]
            if clip.size != it.n_audio:
                raise MasteringError(f"chunk changed while mastering: {store.uri(seg.audio_rel)}")
            cues.append(Cue(position / rate, (position + clip.size) / rate, seg.text))
            position += clip.size
            yield clip
        if k != last:
            position += it.n_pause
            yield it.n_pause
    yield round(settings.tail_s * rate)


def _write_part(
    path: str,
    store: Any,
    segments: Sequence[Segment],
    part: Sequence[_Item],
    gain_db: float,
    settings: MasteringSettings,
) -> tuple[dict, list[Cue]]:
    import soundfile as sf

    cues: list[Cue] = []
    meter = AcxMeter(settings.sample_rate_hz)
    with sf.SoundFile(
        path, "w", settings.sample_rate_hz, 1, subtype="PCM_16", format="FLAC"
    ) as out:
        for block in render(_pieces(store, segments, part, settings, cues), gain_db, settings):
            out.write(block)
            meter.push(block)
    levels = meter.result()
    levels["channels"] = 1
    return levels, cues


def part_rel(out_stem: str, index: int, n_parts: int) -> str:
    """``<stem>.flac``, or ``<stem>-part<k>.flac`` when the chapter is split."""
    return f"{out_stem}.flac" if n_parts == 1 else f"{out_stem}-part{index + 1}.flac"


def master_chapter(
    store: Any,
    segments: Sequence[Segment],
    out_stem: str,
    settings: MasteringSettings = DEFAULT_SETTINGS,
) -> list[MasteredPart]:
    """Join, master and write one chapter (``out_stem`` like
    ``books/<book>/<run>/masters/03-chapter-two``; parts get ``-part1`` etc. only when split).
    Memory bounded: never the whole chapter in RAM. Raises MasteringError naming the problem
    (a missing, undecodable or silent chunk; a chapter with no audio)."""
    if not segments or all(s.audio_rel is None for s in segments):
        raise MasteringError(f"chapter {out_stem!r} has no narrated audio")
    items = _measure_items(store, segments, settings)
    parts = plan_parts(items, settings)
    rate = settings.sample_rate_hz
    edges = round(settings.head_s * rate) + round(settings.tail_s * rate)
    results = []
    for p, part in enumerate(parts):
        rel = part_rel(out_stem, p, len(parts))
        total = edges + _content_samples(part)
        gain_db = gain_for(sum(it.energy for it in part), total, settings.target_rms_db)
        with staged_file(store, rel, ".flac") as tmp:
            for attempt in range(MAX_RENDERS):
                levels, cues = _write_part(tmp, store, segments, part, gain_db, settings)
                miss = settings.target_rms_db - levels["rms_db"]
                if abs(miss) <= RMS_TOLERANCE_DB or attempt == MAX_RENDERS - 1:
                    break
                gain_db += miss
            digest = sha256_file(tmp)
        results.append(
            MasteredPart(
                flac_rel=rel,
                duration_s=levels["duration_s"],
                sha256=digest,
                cues=cues,
                levels=levels,
                gain_db=gain_db,
                segment_indices=[it.index for it in part],
            )
        )
    return results
