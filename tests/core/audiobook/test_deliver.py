"""Delivering chapters without Prefect: a mismatched chunk is regenerated and used, a long
chapter is split into parts, every part is encoded, subtitled and ACX-checked."""

from __future__ import annotations

import hashlib
import json

import pytest

from audio_synth_core.audiobook.books import find_books, read_book
from audio_synth_core.audiobook.checks import retry_id
from audio_synth_core.audiobook.deliver import BookMeta, C2paSpec, DeliverySpec, deliver_chapter
from audio_synth_core.audiobook.plan import build_plan
from audio_synth_core.config.audiobook import AudiobookConfig
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.plugins.cache import cached_validators
from audio_synth_core.provenance.c2pa import material_from_signer, provenance_of, read_c2pa
from audio_synth_core.provenance.signing import Signer, new_private_key_pem
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.watermark.payload import payload_of
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


def test_chapter_files_carry_c2pa_manifests(narrated):
    store, gen, chapter, meta = narrated
    material = material_from_signer(Signer(new_private_key_pem()))
    c2pa = C2paSpec(material, gen.name, gen.version, "wm-key-fp")
    result = deliver_chapter(store, chapter, meta, 2, DeliverySpec(), gen, (), c2pa=c2pa)
    (part,) = result["files"]
    # The MP3 as delivered (manifest embedded) is what was hashed and ACX-checked.
    mp3 = store.read_bytes(part["mp3"])
    assert hashlib.sha256(mp3).hexdigest() == part["mp3_sha256"] and part["acx"]["passed"]
    read = read_c2pa(store, part["mp3"], material.trust_anchor_pem)
    assert read["validation_state"] == "Trusted", read["failures"]
    record = provenance_of(read["manifest"])
    assert record["generator"] == {"name": "espeak", "version": gen.version}
    assert (record["chapter"], record["slot"], record["book"]["book_id"]) == (1, "01", "walk")
    assert record["voice"] == sorted({c.voice for c in chapter.chunks})
    mark = record["watermark"]
    assert mark["payloads"] == [f"{payload_of(c.item_id):08x}" for c in chapter.chunks]
    assert (
        mark["key_fingerprint"] == "wm-key-fp" and f"{mark['payload']:08x}" == mark["payloads"][0]
    )
    # The FLAC master is untouched; its manifest is the sidecar, bound to it.
    flac = store.read_bytes(part["flac"])
    assert hashlib.sha256(flac).hexdigest() == part["flac_sha256"]
    assert part["c2pa"] == layout.c2pa_sidecar(part["flac"]) and store.exists(part["c2pa"])
    assert read_c2pa(store, part["flac"])["validation_state"] == "Valid"
    store.write_bytes(part["flac"], flac[:-200] + bytes(200))  # tampered master: caught
    assert read_c2pa(store, part["flac"])["failures"]
