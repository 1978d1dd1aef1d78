"""WebVTT subtitles of a mastered chapter from its cues (one per narrated chunk)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (WebVTT allows hours past 99; milliseconds are rounded)."""
    ms = max(0, round(seconds * 1000.0))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def cue_text(text: str) -> str:
    """Cue payload: one line of escaped text (a blank line or ``-->`` would end or break it)."""
    flat = " ".join(text.split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return flat


def webvtt(cues: Sequence[Any]) -> str:
    """A WebVTT document with one numbered cue per element of ``cues`` (``start_s``, ``end_s``,
    ``text``); cues without text are left out."""
    lines = ["WEBVTT", ""]
    number = 0
    for cue in cues:
        text = cue_text(cue.text)
        if not text or cue.end_s <= cue.start_s:
            continue
        number += 1
        lines += [str(number), f"{timestamp(cue.start_s)} --> {timestamp(cue.end_s)}", text, ""]
    return "\n".join(lines)
