"""Personas as dataset speakers: their voice, params and attributes reach the planned clips, a new
version regenerates exactly their clips, and a real person's persona needs a "dataset" consent."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from audio_synth_core.dataset.plan import build_plan
from audio_synth_core.generators.espeak import EspeakGenerator
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent, personas
from audio_synth_core.voices.consent import ConsentError
from audio_synth_core.voices.personas import PersonaError
from tests.core.dataset.specs import spec

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ANNA = {
    "name": "anna",
    "voice": "en-us+f3",
    "params": {"pitch": 60},
    "attributes": {"gender": "female", "age_band": "30-39", "accent": "boston"},
}
SPEAKERS = {"voices": ["en-us", "en-gb"], "variants": ["m1", "f1"], "count": 2,
            "personas": ["anna@latest", "bob@1"]}  # fmt: skip


@pytest.fixture
def registry(tmp_path):
    store = Store(str(tmp_path / "out"))
    personas.create(store, ANNA, now=T0)
    personas.create(store, {"name": "bob", "voice": "en-gb", "params": {"rate_wpm": 150}}, now=T0)
    return store


def _plan(registry, **speakers):
    from audio_synth_core.config.dataset import DatasetSpec

    changes = {
        "speakers": {**SPEAKERS, **speakers},
        "size": {"utterances": 60},
        "balance": {"by": ["speaker"], "tolerance": 0.2},
        "splits": {"ratios": {"train": 0.5, "test": 0.5}, "disjoint_by": ["text"]},
    }
    return build_plan(
        DatasetSpec.model_validate(spec(**changes)), EspeakGenerator(), None, registry
    )


def test_persona_speakers_voice_params_attributes(registry):
    plan = _plan(registry)
    by_persona = {s.persona: s for s in plan.speakers if s.persona}
    assert set(by_persona) == {"anna@1", "bob@1"}
    anna = by_persona["anna@1"]
    assert (anna.speaker_id, anna.voice, anna.gender, anna.age_band, anna.accent) == (
        "persona-anna",
        "en-us+f3",
        "female",
        "30-39",
        "boston",
    )
    items = plan.items.to_pylist()
    mine = [r for r in items if r["persona"] == "anna@1"]
    assert mine and {r["voice"] for r in mine} == {"en-us+f3"}
    assert {json.loads(r["generator_params"])["pitch"] for r in mine} == {60}
    assert {json.loads(r["attributes"])["gender"] for r in mine} == {"female"}
    assert any(r["persona"] == "bob@1" for r in items)
    assert any(r["persona"] is None for r in items)  # the synthetic speakers stay


def test_new_persona_version_changes_exactly_its_clips(registry):
    before = {r["id"]: r for r in _plan(registry).items.to_pylist()}
    personas.create(registry, {**ANNA, "params": {"pitch": 70}}, now=T0)
    after = {r["id"]: r for r in _plan(registry).items.to_pylist()}
    gone, new = set(before) - set(after), set(after) - set(before)
    assert gone and {before[i]["persona"] for i in gone} == {"anna@1"}
    assert {after[i]["persona"] for i in new} == {"anna@2"}
    assert len(gone) == len(new)
    assert all(before[i]["persona"] != "anna@1" for i in set(before) & set(after))


def test_personas_alone_and_unknown_persona(registry):
    plan = _plan(registry, voices=[], variants=[])
    assert {s.speaker_id for s in plan.speakers} == {"persona-anna", "persona-bob"}
    with pytest.raises(PersonaError, match="nobody"):
        _plan(registry, personas=["nobody@2"])


def test_real_person_without_dataset_consent_fails_before_work(registry, tmp_path):
    consent.grant(registry, "Cleo Example", ["audiobook"], "ab" * 32, granted_at=T0,
                  consent_id="cleo")  # fmt: skip
    personas.create(
        registry,
        {"name": "cleo", "voice": "en-us", "imitates_real_person": True, "consent_id": "cleo"},
        now=T0,
    )
    with pytest.raises(ConsentError, match=r"'dataset'[\s\S]*cleo@1 \(voice 'en-us'"):
        _plan(registry, personas=["cleo"])
    assert not list((tmp_path / "out").rglob("*.flac"))
