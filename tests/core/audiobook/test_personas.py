"""Personas in audiobooks: a persona narrates the book (or a chapter), its version is part of the
chunk ids, and a real person's persona needs a consent for "audiobook" before any narration."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from audio_synth_core.audiobook.books import find_books, read_book
from audio_synth_core.audiobook.plan import build_plan
from audio_synth_core.config.audiobook import AudiobookConfig
from audio_synth_core.generators.base import build_generator
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent, personas
from audio_synth_core.voices.consent import ConsentError
from audio_synth_core.voices.personas import PersonaError
from tests.core.audiobook.bookfiles import make_markdown_book

TEXT = """# Tales

## First

Anna went home. Tom stayed.

## Second

The sea was calm.
"""
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def espeak():
    return build_generator("espeak", {})


@pytest.fixture
def registry(tmp_path):
    store = Store(str(tmp_path / "out"))
    personas.create(store, {"name": "anna", "voice": "en-us+f3", "params": {"pitch": 60}}, now=T0)
    personas.create(store, {"name": "bob", "voice": "en-gb", "params": {"rate_wpm": 150}}, now=T0)
    return store


def _book(tmp_path, manifest: str = ""):
    folder = make_markdown_book(tmp_path / "tales", TEXT)
    (folder / "book.yaml").write_text(manifest)
    return read_book(find_books(str(folder))[0])


def _rows(plan):
    return plan.items.to_pylist()


def test_book_persona_voice_params_and_column(tmp_path, espeak, registry):
    plan = build_plan(
        AudiobookConfig(), espeak, [_book(tmp_path, "persona: anna@1\n")], None, registry
    )
    rows = _rows(plan)
    assert rows and {r["persona"] for r in rows} == {"anna@1"}
    assert {r["voice"] for r in rows} == {"en-us+f3"}
    params = json.loads(rows[0]["generator_params"])
    assert params["pitch"] == 60
    # Everything else is the generator's own.
    assert {k: v for k, v in params.items() if k != "pitch"} == {
        k: v for k, v in espeak.describe()["params"].items() if k != "pitch"
    }


def test_chapter_persona_and_run_persona(tmp_path, espeak, registry):
    manifest = "voice: en-us\nchapters:\n  - number: 2\n    persona: bob\n"
    plan = build_plan(AudiobookConfig(), espeak, [_book(tmp_path, manifest)], None, registry)
    by_chapter = {}
    for r in _rows(plan):
        by_chapter.setdefault(json.loads(r["attributes"])["chapter"], set()).add(
            (r["persona"], r["voice"])
        )
    assert by_chapter[1] == {(None, "en-us")}
    assert by_chapter[2] == {("bob@1", "en-gb")}
    # The run config's persona narrates a book that names no voice.
    cfg = AudiobookConfig(persona="bob@latest")
    rows = _rows(build_plan(cfg, espeak, [_book(tmp_path / "b")], None, registry))
    assert {r["persona"] for r in rows} == {"bob@1"}


def test_new_persona_version_changes_exactly_its_chunks(tmp_path, espeak, registry):
    manifest = "chapters:\n  - number: 2\n    persona: anna@latest\n"
    book = _book(tmp_path, manifest)
    before = {
        r["id"]: r for r in _rows(build_plan(AudiobookConfig(), espeak, [book], None, registry))
    }
    personas.create(
        registry, {"name": "anna", "voice": "en-us+f3", "params": {"pitch": 70}}, now=T0
    )
    after = {
        r["id"]: r for r in _rows(build_plan(AudiobookConfig(), espeak, [book], None, registry))
    }
    gone = set(before) - set(after)
    assert gone and {before[i]["persona"] for i in gone} == {"anna@1"}
    assert {after[i]["persona"] for i in set(after) - set(before)} == {"anna@2"}
    assert all(before[i]["persona"] is None for i in set(before) & set(after))


def test_unknown_persona_is_a_clear_error(tmp_path, espeak, registry):
    with pytest.raises(PersonaError, match="nobody"):
        build_plan(
            AudiobookConfig(), espeak, [_book(tmp_path, "persona: nobody@3\n")], None, registry
        )


def test_real_person_without_audiobook_consent_fails_before_narration(tmp_path, espeak, registry):
    consent.grant(
        registry, "Cleo Example", ["catalog"], "ab" * 32, granted_at=T0, consent_id="cleo"
    )
    personas.create(
        registry,
        {"name": "cleo", "voice": "en-us", "imitates_real_person": True, "consent_id": "cleo"},
        now=T0,
    )
    with pytest.raises(ConsentError, match=r"'audiobook'[\s\S]*cleo@1 \(voice 'en-us'"):
        build_plan(AudiobookConfig(), espeak, [_book(tmp_path, "persona: cleo\n")], None, registry)
    assert not list((tmp_path / "out").rglob("*.flac"))
