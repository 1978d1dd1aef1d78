"""The audiobook run's summary, gate and HTML report (built with reporting/html.py's toolkit).

The report opens with the chapter list and word counts (chapters without text named), then the
books (new / changed / unchanged), then one row per delivered file with every ACX rule's value and
margin, then the chunks that intelligibility flagged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from audio_synth_core.audiobook.plan import AudiobookPlan
from audio_synth_core.reporting.html import CSS, RawHtml, escape_html, format_value, html_table
from audio_synth_core.store import schema

NEW, CHANGED, UNCHANGED = "new", "changed", "unchanged"


def _state(key: str, previous: str | None) -> str:
    if previous is None:
        return NEW
    return UNCHANGED if previous == key else CHANGED


def book_states(
    plan: AudiobookPlan, delivered: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Per book: its state against the previous audiobook run, chapters (state, files, checks),
    chapters not narrated (by name) and where book.json is."""
    before = {b["book_id"]: b for b in (previous or {}).get("books", [])}
    chapters = {(c["book_id"], c["key"]): c for c in delivered["chapters"]}
    books = {b["book_id"]: b for b in delivered["books"]}
    out = []
    for bp in plan.books:
        prev = before.get(bp.book_id)
        prev_chapters = {c["slot"]: c["key"] for c in (prev or {}).get("chapters", [])}
        rows = []
        for c in bp.chapters:
            got = chapters[(bp.book_id, c.key)]
            rows.append(
                {
                    "number": c.number,
                    "slot": c.slot,
                    "title": c.title,
                    "key": c.key,
                    "words": c.words,
                    "chunks": len(c.chunks),
                    "state": _state(c.key, prev_chapters.get(c.slot)) if prev else NEW,
                    "reassembled": not got.get("reused", False),
                    "duration_s": got["duration_s"],
                    "files": [
                        {k: f[k] for k in ("title", "flac", "mp3", "vtt", "duration_s")}
                        | {"acx_passed": f["acx"]["passed"]}
                        for f in got["files"]
                    ],
                    "acx_passed": got["acx_passed"],
                    "retried": got.get("retried", 0),
                    "flagged": got.get("flagged", []),
                }
            )
        book = books.get(bp.book_id, {})
        out.append(
            {
                "book_id": bp.book_id,
                "title": bp.book.title,
                "author": bp.book.author,
                "source": bp.book.source,
                "source_sha256": bp.book.source_sha256,
                "format": bp.book.format,
                "words": bp.book.words,
                "key": bp.key,
                "state": _state(bp.key, prev["key"]) if prev else NEW,
                "lexicon_version": bp.lexicon_version,
                "chapters": rows,
                "not_narrated": [
                    {"number": c.number, "title": c.title, "reason": c.skipped_reason}
                    for c in bp.book.chapters
                    if c.skipped_reason
                ],
                "book_json": book.get("book_json"),
                "m4b": book.get("m4b"),
                "sample": (book.get("sample") or {}).get("mp3"),
                "warnings": book.get("warnings", []),
                "duration_s": book.get("duration_s"),
            }
        )
    return out


def _files(delivered: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, file) of every ACX-checked file: chapter and credits MP3s, samples."""
    out = [(f"{c['book_id']} {c['slot']}", f) for c in delivered["chapters"] for f in c["files"]]
    for b in delivered["books"]:
        if b.get("sample"):
            out.append((f"{b['book_id']} sample", b["sample"]))
    return out


def metrics(
    items: pd.DataFrame,
    summaries: Sequence[Mapping[str, Any]],
    delivered: Mapping[str, Any],
    narrate_s: float,
    deliver_s: float,
) -> dict[str, Any]:
    files = _files(delivered)
    passed = sum(f["acx"]["passed"] for _, f in files)
    chapters = delivered["chapters"]
    audio_s = sum(c["duration_s"] for c in chapters)
    wall_s = narrate_s + deliver_s
    rss = [r["peak_rss_mb"] for r in [*chapters, *delivered["books"]] if r.get("peak_rss_mb")]
    ok = items[items["status"] == schema.STATUS_OK]
    return {
        "chunks_total": len(items),
        "chunks_generated": sum(s["n_generated"] for s in summaries),
        "chunks_unchanged": int((ok["change"] == schema.CHANGE_UNCHANGED).sum()),
        "chunks_retried": sum(c.get("retried", 0) for c in chapters),
        "chunks_flagged": sum(len(c.get("flagged", [])) for c in chapters),
        "chapters_total": len(chapters),
        "chapters_assembled": sum(not c.get("reused") for c in chapters),
        "chapters_reused": sum(bool(c.get("reused")) for c in chapters),
        "audio_hours": audio_s / 3600,
        "narration_wall_s": narrate_s,
        "delivery_wall_s": deliver_s,
        "audio_hours_per_wall_hour": audio_s / wall_s if wall_s > 0 else None,
        "acx_files": len(files),
        "acx_files_passed": passed,
        "acx_pass_rate": passed / len(files) if files else None,
        "worker_peak_rss_mb": max(rss) if rss else None,
    }


def gate(delivered: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """100% ACX compliance: every delivered file passes every rule."""
    reasons = []
    for label, f in _files(delivered):
        if not f["acx"]["passed"]:
            bad = [k for k, r in f["acx"]["rules"].items() if not r["passed"]]
            reasons.append(f"{label} ({f['mp3']}) fails ACX {', '.join(bad)}")
    return {"passed": not reasons, "mode": mode, "reasons": reasons}


def _acx_table(delivered: Mapping[str, Any]) -> str:
    files = _files(delivered)
    rules = sorted({k for _, f in files for k in f["acx"]["rules"]})
    headers = ["file", "passed", *rules]
    rows = []
    for label, f in files:
        cells: list[Any] = [f"{label}: {f['mp3'].rsplit('/', 1)[-1]}", f["acx"]["passed"]]
        for rule in rules:
            r = f["acx"]["rules"].get(rule)
            if r is None:
                cells.append(None)
                continue
            mark = "" if r["passed"] else " FAIL"
            cells.append(
                RawHtml(
                    f"{format_value(r['value'])}{mark}<br><span class=muted>limit "
                    f"{escape_html(r['limit'])}, margin {format_value(r['margin'])}</span>"
                )
            )
        rows.append(cells)
    return html_table(headers, rows)


def render(plan: AudiobookPlan, summary: Mapping[str, Any], delivered: Mapping[str, Any]) -> str:
    m, g = summary["metrics"], summary["gate"]
    banner = "pass" if g["passed"] else "fail"
    reasons = "".join(f"<li>{escape_html(r)}</li>" for r in g["reasons"][:50])
    parts = [
        f"<!doctype html><html><head><meta charset=utf-8><title>Audiobook run {plan.run_id}"
        f"</title><style>{CSS}</style></head><body><main>",
        f"<h1>Audiobook run {escape_html(plan.run_id)}</h1>",
        f'<div class="banner {banner}"><strong>ACX gate {"passed" if g["passed"] else "FAILED"}'
        f"</strong>{m['acx_files_passed']}/{m['acx_files']} delivered files pass every rule"
        f"{f'<ul>{reasons}</ul>' if reasons else ''}</div>",
        f"<p class=muted>{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}</p>",
        "<h2>Chapters</h2>",
    ]
    for book in summary["books"]:
        parts.append(
            f"<h3>{escape_html(book['title'])} ({escape_html(book['book_id'])}, "
            f"{book['state']}, {book['words']} words, lexicon {escape_html(book['lexicon_version'])})</h3>"
        )
        rows = [
            [
                c["number"],
                c["title"],
                c["words"],
                c["state"],
                c["reassembled"],
                c["duration_s"],
                c["retried"],
                len(c["flagged"]),
                c["acx_passed"],
            ]
            for c in book["chapters"]
        ]
        rows += [
            [
                c["number"],
                c["title"],
                0,
                f"NOT NARRATED: {c['reason']}",
                None,
                None,
                None,
                None,
                None,
            ]
            for c in book["not_narrated"]
        ]
        parts.append(
            html_table(
                [
                    "#",
                    "title",
                    "words",
                    "state",
                    "assembled",
                    "duration s",
                    "retried",
                    "flagged",
                    "ACX",
                ],
                sorted(rows, key=lambda r: r[0]),
            )
        )
        for w in book["warnings"]:
            parts.append(f"<p class=warn>{escape_html(w)}</p>")
    parts.append("<h2>ACX rules per delivered file (measured on the MP3s)</h2>")
    parts.append(_acx_table(delivered))
    flagged = [
        [c["book_id"], c["slot"], k["item_id"], k["wer"], k["retry_wer"], k["asr_text"]]
        for c in delivered["chapters"]
        for k in c.get("checks", [])
        if k.get("flagged")
    ]
    parts.append("<h2>Intelligibility: chunks over the WER limit after one regeneration</h2>")
    parts.append(
        html_table(["book", "chapter", "chunk", "WER", "WER retry", "heard"], flagged)
        if flagged
        else "<p>None.</p>"
    )
    parts.append("<h2>Run figures</h2>")
    parts.append(html_table(["metric", "value"], [[k, v] for k, v in m.items()], "kv"))
    parts.append("</main></body></html>")
    return "".join(parts)
