"""Delivering chapters without Prefect: a mismatched chunk is regenerated and used, a long
chapter is split into parts, every part is encoded, subtitled and ACX-checked."""

from __future__ import annotations

import json

import pytest

from audio_synth_core.audiobook.books import find_books, read_book
from audio_synth_core.audiobook.checks import retry_id
from audio_synth_core.audiobook.deliver import BookMeta, DeliverySpec, deliver_chapter
from audio_synth_core.audiobook.plan import build_plan
from audio_synth_core.config.audiobook import AudiobookConfig
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.plugins.cache import cached_validators
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from tests.core.audiobook.bookfiles import make_markdown_book

TEXT = """## The Walk

The dog ran across the green field. A red kite flew above the old stone bridge.
The children laughed and went home for supper.
"""


@pytest.fixture
def narrated(tmp_path):
    folder = make_markdown_book(tmp_path / "walk", TEXT)
    gen = build_generator("espeak", {})
    plan = build_plan(AudiobookConfig(), gen, [read_book(find_books(str(folder))[0])])
    store = Store(str(tmp_path / "out"))
    for spec in runs.prepare(
        store,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    ):
        generate_shard(spec, store, gen, 8)
    chapter = next(c for c in plan.books[0].chapters if c.slot == "01")
    meta = BookMeta("walk", "Walk", "Writer", "Voice", tracks=len(plan.books[0].chapters))
    return store, gen, chapter, meta


def test_mismatched_chunk_is_regenerated_and_used(narrated):
    store, gen, chapter, meta = narrated
    dog, kite = chapter.chunks[1], chapter.chunks[2]
    # The dog sentence's file holds the kite sentence: intelligibility must catch it.
    store.write_bytes(
        layout.audio(dog.item_id, "flac"), store.read_bytes(layout.audio(kite.item_id, "flac"))
    )
    validators = cached_validators(
        json.dumps([{"name": "intelligibility", "params": {"max_wer": 0.5}}])
    )
    spec = DeliverySpec({}, 192, {"rate_wpm": 140})
    result = deliver_chapter(store, chapter, meta, 2, spec, gen, validators)
    checks = {c["item_id"]: c for c in result["checks"]}
    assert checks[dog.item_id]["retried"] and checks[dog.item_id]["wer"] > 0.5
    assert checks[dog.item_id]["used_id"] == retry_id(dog.item_id, {"rate_wpm": 140})
    assert not checks[dog.item_id]["flagged"] and checks[dog.item_id]["retry_wer"] <= 0.5
    assert not checks[kite.item_id]["retried"]
    assert result["retried"] == 1 and result["acx_passed"]
    # Delivered once: the same chapter again is read back, not re-assembled.
    again = deliver_chapter(store, chapter, meta, 2, spec, gen, validators)
    assert again["reused"] and again["files"] == result["files"]


def test_long_chapter_is_split_into_parts(narrated):
    store, gen, chapter, meta = narrated
    spec = DeliverySpec({"max_part_minutes": 0.2}, 192, {})
    result = deliver_chapter(store, chapter, meta, 2, spec, gen, ())
    files = result["files"]
    assert len(files) >= 2
    assert [f["flac"].rsplit("/", 1)[1] for f in files][:2] == ["01-part1.flac", "01-part2.flac"]
    assert all(f["acx"]["passed"] for f in files)
    # Every chunk is in exactly one part, in order, one cue each.
    cues = [c["text"] for f in files for c in f["cues"]]
    assert cues == [c.script for c in chapter.chunks]
    assert result["duration_s"] == pytest.approx(sum(f["duration_s"] for f in files))
