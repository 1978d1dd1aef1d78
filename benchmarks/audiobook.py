"""Audiobook throughput versus the catalog pipeline on the same text, measured in one run.

    .venv/bin/python -m benchmarks.audiobook --words 100000 --workers 2
    .venv/bin/python -m benchmarks.audiobook --words 20000 --intelligibility

A deterministic public-domain-like novel (generated: no download) of ``--words`` words in
chapters of ``--chapter-words`` is narrated twice with the same engine, workers and Prefect API:
1. as a catalog (one row per paragraph; catalog validation off, like the audiobook's by default),
2. as a book: narration + per-chapter assembly, mastering, MP3, WebVTT, ACX checks, the retail
   sample, the M4B and book.json.
Prints audio hours per wall hour of both and the ratio (target >= 0.9: assembly and encoding are
not the bottleneck), with the audiobook measured both on its narrated speech (the same text as the
catalog) and on its delivered hours (speech + pauses + room tone); peak RSS of the driver and of
the workers (process peaks, assembly included); the ACX pass rate; and the load average around
the run (other work on the machine).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from flows.runtime import configure_environment

configure_environment()  # before Prefect is imported

NAMES = ["Aoife", "Tomas", "Marguerite", "the keeper", "the captain", "old Brennan", "the child"]
VERBS = [
    "walked to",
    "looked across",
    "remembered",
    "spoke quietly of",
    "climbed toward",
    "waited by",
]
PLACES = [
    "the harbour wall",
    "the northern light",
    "the church on the hill",
    "the long reef",
    "the empty market",
    "the lamp room",
    "the road to the village",
]
CODAS = [
    "while the tide turned",
    "as the gulls settled for the night",
    "before the rain came in from the west",
    "and the bell rang twice",
    "without a word to anyone",
]


def make_book(folder: Path, words: int, chapter_words: int) -> tuple[Path, list[str]]:
    """A Markdown novel of about ``words`` words; also its paragraphs (for the catalog)."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# The Long Watch", ""]
    paragraphs: list[str] = []
    total, chapter = 0, 0
    while total < words:
        chapter += 1
        lines += [f"## Chapter {chapter}", ""]
        in_chapter = 0
        while in_chapter < chapter_words and total < words:
            sentences = []
            for _ in range(rng.randint(3, 6)):
                s = f"{rng.choice(NAMES)} {rng.choice(VERBS)} {rng.choice(PLACES)} {rng.choice(CODAS)}."
                sentences.append(s[0].upper() + s[1:])
            if rng.random() < 0.1:
                sentences.append(
                    f"It was {rng.randint(2, 12)} o'clock on the {rng.randint(1, 28)}th."
                )
            para = " ".join(sentences)
            n = len(para.split())
            total += n
            in_chapter += n
            paragraphs.append(para)
            lines += [para, ""]
    (folder / "long-watch.md").write_text("\n".join(lines), encoding="utf-8")
    (folder / "book.yaml").write_text(
        "source: long-watch.md\nauthor: Benchmark\nnarrator: espeak-ng\n", encoding="utf-8"
    )
    return folder, paragraphs


def _catalog(path: Path, paragraphs: list[str]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "language"])
        for i, p in enumerate(paragraphs):
            writer.writerow([f"p{i:06d}", p, "en"])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--chapter-words", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--intelligibility", action="store_true", help="ASR check every chunk")
    parser.add_argument("--keep", type=Path, help="keep outputs in this folder")
    args = parser.parse_args()

    from flows.api import narrate_books, run_catalog
    from flows.runtime import prefect_api

    work = args.keep or Path(tempfile.mkdtemp(prefix="audio-synth-bench-audiobook-"))
    book, paragraphs = make_book(work / "book", args.words, args.chapter_words)
    catalog = _catalog(work / "catalog.csv", paragraphs)
    load_before = os.getloadavg()
    with prefect_api():  # started once, before timing (one server per deployment, not per run)
        t0 = time.perf_counter()
        cat = run_catalog(
            {
                "name": "bench-catalog",
                "catalog": {"path": str(catalog)},
                "output": {"url": str(work / "catalog-out")},
                "sharding": {"items_per_shard": 250},
                "compute": {"n_workers": args.workers},
                "validation": {"enabled": False},
            }
        )
        catalog_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ab = narrate_books(
            str(book),
            str(work / "audiobook-out"),
            {
                "name": "bench-audiobook",
                "sharding": {"items_per_shard": 64, "batch_size": 32},
                "compute": {"n_workers": args.workers},
                "intelligibility": {"enabled": args.intelligibility},
            },
        )
        book_s = time.perf_counter() - t0
    load_after = os.getloadavg()
    from flows.api import read_items

    speech_h = float(read_items(str(work / "audiobook-out"))["duration_s"].sum()) / 3600
    m = ab["metrics"]
    cat_h = cat["metrics"]["audio_hours"]
    cat_rate = cat_h / (catalog_s / 3600)
    speech_rate = speech_h / (book_s / 3600)
    delivered_rate = m["audio_hours"] / (book_s / 3600)
    driver_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"text: {args.words} words, {len(paragraphs)} paragraphs, {m['chapters_total']} files")
    print(
        f"catalog pipeline : {cat_h:7.3f} audio h in {catalog_s:7.1f} s = {cat_rate:8.1f} audio h/wall h"
    )
    print(
        f"audiobook (speech): {speech_h:7.3f} audio h in {book_s:7.1f} s = {speech_rate:8.1f} "
        f"audio h/wall h  ratio {speech_rate / cat_rate:.2f} (target >= 0.9)"
    )
    print(
        f"audiobook (delivered): {m['audio_hours']:7.3f} h = {delivered_rate:8.1f} audio h/wall h "
        f"ratio {delivered_rate / cat_rate:.2f}"
    )
    print(
        f"  narration {m['narration_wall_s']:.1f} s, delivery (check+assemble+master+encode+ACX+"
        f"M4B) {m['delivery_wall_s']:.1f} s"
    )
    print(
        f"peak RSS: driver {driver_mb:.0f} MB (flow + Prefect API client in this process), "
        f"workers {m['worker_peak_rss_mb']:.0f} MB (max over chapter/book tasks)"
    )
    print(
        f"ACX pass rate {m['acx_pass_rate']:.3f} ({m['acx_files_passed']}/{m['acx_files']} files); "
        f"chunks flagged {m['chunks_flagged']}"
    )
    print(f"load average before {load_before}, after {load_after} (cores: {os.cpu_count()})")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
