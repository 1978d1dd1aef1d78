"""Reading Markdown and plain-text manuscripts: chapters from headings, paragraphs from blank lines.

Markdown: with exactly one ``#`` heading and several ``##`` headings the ``#`` is the book's title
and ``##`` are chapters; otherwise the highest heading level present starts chapters. Plain text:
lines such as ``Chapter 3``, ``CHAPTER III. The Storm`` or ``Part Two`` start chapters. Text before
the first chapter heading becomes a chapter of its own only when it has words.
"""

from __future__ import annotations

import re

from audio_synth_core.audiobook.model import RawChapter
from audio_synth_core.inputs.text import normalize

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^(```|~~~)")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HTML = re.compile(r"<[^>]+>")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_QUOTE = re.compile(r"^\s*>\s?")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_TEXT_HEADING = re.compile(
    r"^\s*(chapter|part|book|prologue|epilogue)\b[\w .:'-]{0,80}$", re.IGNORECASE
)


def _plain(line: str) -> str:
    """A Markdown line as the words it shows."""
    line = _IMAGE.sub("", line)
    line = _LINK.sub(r"\1", line)
    line = _HTML.sub("", line)
    line = _QUOTE.sub("", _LIST.sub("", line))
    for _ in range(2):  # nested emphasis
        line = _EMPHASIS.sub(r"\2", line)
    return line


def _paragraphs(lines: list[str]) -> tuple[str, ...]:
    out, current = [], []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            text = normalize(" ".join(current))
            if text:
                out.append(text)
            current = []
    return tuple(out)


def _split(sections: list[tuple[str | None, list[str]]], fallback_title: str) -> list[RawChapter]:
    chapters = []
    for title, lines in sections:
        paragraphs = _paragraphs(lines)
        if title is None:
            if paragraphs:  # front text with words: a chapter of its own
                chapters.append(RawChapter(fallback_title, paragraphs))
            continue
        chapters.append(RawChapter(title, paragraphs))
    return chapters


def read_markdown(text: str, fallback_title: str) -> tuple[str | None, list[RawChapter]]:
    """(book title if the document names one, chapters)."""
    lines: list[tuple[int, str, str]] = []  # (heading level or 0, heading text or line, raw)
    in_fence = False
    for raw in text.splitlines():
        if _FENCE.match(raw.strip()):
            in_fence = not in_fence
            continue
        if in_fence or _RULE.match(raw):
            lines.append((0, "", ""))
            continue
        m = _ATX.match(raw)
        if m:
            lines.append((len(m.group(1)), normalize(_plain(m.group(2))), raw))
        else:
            lines.append((0, _plain(raw), raw))
    levels = [lvl for lvl, _, _ in lines if lvl]
    book_title = None
    chapter_level = min(levels) if levels else 0
    if levels.count(1) == 1 and 2 in levels:
        chapter_level = 2
        book_title = next(t for lvl, t, _ in lines if lvl == 1)
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for lvl, content, _raw in lines:
        if chapter_level and lvl == chapter_level:
            sections.append((content, []))
        elif lvl == 1 and book_title is not None:
            continue
        elif lvl:  # a lower heading inside a chapter: read as its own paragraph
            sections[-1][1].extend(["", content, ""])
        else:
            sections[-1][1].append(content)
    return book_title, _split(sections, book_title or fallback_title)


def read_text(text: str, fallback_title: str) -> list[RawChapter]:
    """Chapters of a plain-text manuscript."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    lines = text.splitlines()
    for i, line in enumerate(lines):
        before = lines[i - 1].strip() if i else ""
        if _TEXT_HEADING.match(line) and not before:
            sections.append((normalize(line), []))
        else:
            sections[-1][1].append(line)
    if len(sections) == 1:
        sections = [(fallback_title, sections[0][1])]
    return _split(sections, fallback_title)
