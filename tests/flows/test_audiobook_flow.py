"""End to end: books narrated on a LocalCluster into a folder and into S3; every deliverable
decoded and checked (MP3 CBR 192 kbps, M4B chapters, WebVTT cues, ACX rules, book.json); a
lexicon change re-narrates only its chunks; a killed run resumes; bad books fail up front."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import yaml

from audio_synth_core.audiobook.model import BookError
from audio_synth_core.mastering import acx
from audio_synth_core.provenance.c2pa import provenance_of, read_c2pa
from audio_synth_core.store.storage import Store
from audio_synth_core.watermark.payload import payload_of
from flows.api import narrate_books, read_items
from tests.conftest import REPO
from tests.core.audiobook.bookfiles import (
    make_corrupt_epub,
    make_drm_epub,
    make_epub,
    make_image_only_epub,
    make_markdown_book,
    rms,
)

pytestmark = pytest.mark.slow


def small_config(**sections) -> dict:
    cfg = {
        "name": "test-book",
        "sharding": {"items_per_shard": 4, "batch_size": 4},
        "compute": {"n_workers": 1, "retries": 1, "retry_delay_s": 0.5},
        "tracking": {"experiment": "tests-audiobook"},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def _vtt(text: str) -> list[tuple[float, float, str]]:
    def secs(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    blocks = [b.splitlines() for b in text.strip().split("\n\n")[1:]]
    return [(secs(b[1].split(" --> ")[0]), secs(b[1].split(" --> ")[1]), b[2]) for b in blocks]


def _mp3_facts(data: bytes) -> tuple[int, int, set[int]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.layout.nb_channels
        kbps = {acx.frame_kbps(bytes(p)[:4]) for p in container.demux(stream) if p.size}
    return rate, channels, kbps


def check_book(store: Store, book: dict, run_chapters: dict) -> None:
    """Every file of one delivered book, decoded and checked."""
    book_json = store.read_json(book["book_json"])
    chapters = [c for c in book["chapters"]]
    for c in chapters:
        chapter = store.read_json(
            next(k for k in run_chapters if k.endswith(f"/{c['key']}/chapter.json"))
        )
        (part,) = chapter["files"]
        audio, rate = sf.read(io.BytesIO(store.read_bytes(part["flac"])), dtype="float32")
        assert rate == 44100 and audio.ndim == 1
        assert abs(len(audio) / rate - part["duration_s"]) < 0.01
        assert rms(audio) > 0.01 and np.min(np.abs(audio[: rate // 2])) >= 0  # decodes
        assert np.any(audio[: int(0.5 * rate)] != 0), "the head is room tone, not digital zero"
        mp3_rate, channels, kbps = _mp3_facts(store.read_bytes(part["mp3"]))
        assert (mp3_rate, channels, kbps) == (44100, 1, {192})
        checked = acx.check_file(store, part["mp3"])
        assert checked.passed, checked.rules
        assert all(rule["passed"] for rule in checked.rules.values())
        # C2PA: embedded in the MP3 (ACX passed above on the file with it), a FLAC sidecar; the
        # record names the generator, the chapter and its chunks' watermark payloads.
        read = read_c2pa(store, part["mp3"])
        assert read["embedded"] and read["validation_state"] == "Valid", read["failures"]
        record = provenance_of(read["manifest"])
        assert record["generator"]["name"] == "espeak" and record["generator"]["version"]
        assert (record["book"]["book_id"], record["chapter"]) == (
            book["book_id"],
            chapter["number"],
        )
        mark = record["watermark"]
        assert mark["payloads"] == [f"{payload_of(k['used_id']):08x}" for k in chapter["checks"]]
        assert mark["payloads"] and mark["key_fingerprint"]
        labels = {a["label"] for a in read["manifest"]["assertions"]}
        assert "c2pa.soft-binding" in labels
        flac_read = read_c2pa(store, part["flac"])
        assert part["c2pa"] == part["flac"][:-5] + ".c2pa" and not flac_read["embedded"]
        assert flac_read["validation_state"] == "Valid", flac_read["failures"]
        # One cue per chunk, in order, each chunk's own text, separated by its pause.
        cues = _vtt(store.read_bytes(part["vtt"]).decode())
        checks = chapter["checks"]
        assert len(cues) == chapter["chunks"] == len(checks)
        assert cues[0][0] == pytest.approx(0.75, abs=0.1)  # after the head room tone
        for (s1, e1, _), (s2, _, _) in itertools.pairwise(cues):
            assert s1 < e1 <= s2
        assert cues[-1][1] <= part["duration_s"] - 1.0  # tail room tone
    # The M4B: one chapter per delivered file, its title, starting where the masters join.
    m4b = store.read_bytes(book["m4b"])
    with av.open(io.BytesIO(m4b)) as container:
        marks = container.chapters()
        assert container.streams.audio[0].codec_context.name == "aac"
    starts = np.cumsum([0.0] + [c["duration_s"] for c in chapters])[:-1]
    assert [m["metadata"].get("title") for m in marks] == [c["title"] for c in chapters]
    for mark, start in zip(marks, starts, strict=True):
        assert float(mark["start"] * mark["time_base"]) == pytest.approx(start, abs=0.05)
    # book.json: every file with its duration and checksum.
    import hashlib

    for f in book_json["files"]:
        assert hashlib.sha256(store.read_bytes(f["path"])).hexdigest() == f["sha256"]
        assert f["duration_s"] > 0
    kinds = {f["kind"] for f in book_json["files"]}
    assert {
        "chapter-mp3",
        "chapter-flac",
        "chapter-vtt",
        "credits-mp3",
        "m4b",
        "sample-mp3",
        "chapter-c2pa",
        "sample-c2pa",
    } <= kinds


def _chapter_files(out: Path) -> dict:
    return {str(p.relative_to(out)): p for p in out.glob("audiobooks/*/chapters/*/chapter.json")}


def test_epub_and_markdown_end_to_end_then_lexicon_change(prefect_api, tmp_path):
    library = tmp_path / "manuscripts"
    make_epub(library.parent / "sea.epub")
    library.mkdir()
    (library / "sea.epub").write_bytes((library.parent / "sea.epub").read_bytes())
    make_markdown_book(library / "small")
    out = tmp_path / "out"
    manifest = narrate_books(str(library), str(out), small_config())
    store = Store(str(out))
    assert manifest["kind"] == "audiobook" and manifest["gate"]["passed"]
    books = {b["book_id"]: b for b in manifest["books"]}
    assert set(books) == {"sea", "small"} and all(b["state"] == "new" for b in books.values())
    sea = books["sea"]
    assert [c["title"] for c in sea["chapters"]] == [
        "Opening Credits",
        "The Harbour",
        "The Island",
        "The Return",
        "Closing Credits",
    ]
    assert [(c["title"], c["reason"]) for c in sea["not_narrated"]] == [
        ("Nothing Here", "no text"),
        ("A Picture", "no text (image only)"),
    ]
    listing = store.read_json(f"runs/{manifest['run_id']}/reports/chapters.json")
    assert [c["words"] for c in listing[0]["chapters"]] == [13, 10, 0, 0, 6]
    m = manifest["metrics"]
    assert m["acx_pass_rate"] == 1.0 and m["chunks_generated"] == m["chunks_total"]
    html = store.read_bytes(f"runs/{manifest['run_id']}/reports/audiobook.html").decode()
    assert "Nothing Here" in html and "true_peak_db" in html and "margin" in html
    for book in books.values():
        check_book(store, book, _chapter_files(out))

    # A lexicon entry for "baker": only the two chunks saying it are narrated again, only
    # that chapter is re-assembled; the EPUB is untouched.
    make_markdown_book(library / "small", lexicon=[{"word": "baker", "say": "bay ker"}])
    again = narrate_books(str(library), str(out), small_config())
    m2 = again["metrics"]
    assert m2["chunks_generated"] == 2 and m2["chunks_unchanged"] == m2["chunks_total"] - 2
    assert m2["chapters_assembled"] == 1
    books2 = {b["book_id"]: b for b in again["books"]}
    assert books2["sea"]["state"] == "unchanged" and books2["small"]["state"] == "changed"
    states = {c["slot"]: c["state"] for c in books2["small"]["chapters"]}
    assert states == {
        "opening": "unchanged",
        "01": "changed",
        "02": "unchanged",
        "closing": "unchanged",
    }
    items = read_items(str(out))
    assert items["text"].str.contains("bay ker").sum() == 2
    check_book(store, books2["small"], _chapter_files(out))
    # The same books again: the finished run is the answer.
    assert narrate_books(str(library), str(out), small_config())["run_id"] == again["run_id"]


def test_s3_output_and_cli(prefect_api, s3_bucket, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    folder = make_markdown_book(tmp_path / "small")
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(small_config(intelligibility={"enabled": False})))
    url = f"s3://{s3_bucket}/books"
    result = CliRunner().invoke(app, ["audiobook", str(folder), "--output", url, "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "ACX 5/5 files pass" in result.output and "m4b:" in result.output
    store = Store(url)
    manifest = json.loads(store.read_bytes("LATEST.json"))
    book = store.read_json(f"runs/{manifest['run_id']}/manifest.json")["books"][0]
    assert book["m4b"].startswith("audiobooks/small/")
    chapters = {
        f"{p}": p
        for p in (f"audiobooks/small/chapters/{c['key']}/chapter.json" for c in book["chapters"])
    }
    check_book(store, book, chapters)


def test_killed_run_resumes_without_renarrating(prefect_api, tmp_path):
    text = "## Long\n\n" + " ".join(
        f"Sentence {i} tells how the harbour lights came on one by one." for i in range(60)
    )
    folder = make_markdown_book(tmp_path / "long", text)
    out = tmp_path / "out"
    cfg = small_config(sharding={"items_per_shard": 1}, intelligibility={"enabled": False})
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    script = (
        "import json,sys; from flows.api import narrate_books; "
        "narrate_books(sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(folder), str(out), str(cfg_path)],
        cwd=REPO,
        start_new_session=True,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    parts: list[Path] = []
    while time.monotonic() < deadline and len(parts) < 3:
        parts = list(out.glob("runs/*/items/*.parquet"))
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(out.glob("runs/*/items/*.parquet")))
    assert done >= 3 and not list(out.glob("runs/*/manifest.json")), "killed mid-book"
    manifest = narrate_books(str(folder), str(out), cfg)
    total = manifest["metrics"]["chunks_total"]
    assert done < total
    assert manifest["metrics"]["chunks_generated"] == total - done
    items = read_items(str(out))
    assert len(items) == total and items["id"].is_unique and (items["status"] == "ok").all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (make_drm_epub, "DRM"),
        (make_corrupt_epub, "not a readable EPUB"),
        (make_image_only_epub, "image-only"),
    ],
)
def test_bad_books_fail_before_any_server(tmp_path, make, message):
    path = make(tmp_path / "broken.epub")
    with pytest.raises(BookError, match=message):
        narrate_books(str(path), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.parquet"))


def test_nightly_deployment_binds_to_the_flow():
    import inspect

    from prefect.client.schemas.schedules import CronSchedule

    from flows.audiobook import audiobook_flow

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (dep,) = [d for d in spec["deployments"] if d["name"] == "audiobook-nightly"]
    assert dep["entrypoint"] == "flows/audiobook.py:audiobook_flow"
    inspect.signature(audiobook_flow.fn).bind(**dep["parameters"])
    assert (REPO / dep["parameters"]["book_or_folder"]).is_dir()
    assert (REPO / dep["parameters"]["config"]).is_file()
    CronSchedule(cron=dep["schedules"][0]["cron"], timezone="UTC")


def test_demo_book_and_config_load():
    from audio_synth_core.audiobook.books import find_books, read_book
    from audio_synth_core.config.audiobook import load_audiobook_config

    cfg = load_audiobook_config(REPO / "configs" / "audiobook-demo.yaml")
    assert cfg.intelligibility.enabled and cfg.gate.acx == "fail"
    (src,) = find_books(str(REPO / "datasets" / "books"))
    book = read_book(src)
    assert len(book.narrated) >= 3 and any(c.skipped_reason for c in book.chapters)
    assert {e.word for e in book.manifest.lexicon} == {"Aoife", "Caoimhe"}
    assert any(ch.isdigit() for c in book.chapters for p in c.paragraphs for ch in p)
