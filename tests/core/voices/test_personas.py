"""Persona registry: versions, references, checks at creation, never overwriting a version."""

from __future__ import annotations

import json

import pytest

from audio_synth_core.generators.base import build_generator
from audio_synth_core.generators.espeak import EspeakGenerator
from audio_synth_core.plugins import registry as plugins
from audio_synth_core.store import layout
from audio_synth_core.voices import consent, personas
from audio_synth_core.voices.personas import PersonaError
from tests.core.voices.conftest import T0


def test_versions_are_assigned_and_references_resolve(filled):
    assert personas.names(filled) == ["anna", "bob"]
    assert personas.versions(filled, "anna") == [1, 2]
    assert personas.resolve(filled, "anna@1").params == {"pitch": 60}
    for ref in ("anna", "anna@latest", "anna@2", " anna@2 "):
        assert personas.resolve(filled, ref).ref == "anna@2"
    latest = [p.ref for p in personas.list_personas(filled)]
    assert latest == ["anna@2", "bob@1"]
    assert [p.ref for p in personas.list_personas(filled, all_versions=True)] == [
        "anna@1",
        "anna@2",
        "bob@1",
    ]
    stored = json.loads(filled.read_bytes(layout.persona("anna", 2)))
    assert stored["version"] == 2 and stored["consent_id"] == "anna"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("nobody", "unknown persona 'nobody' in registry .*; known: anna, bob"),
        ("nobody@3", "unknown persona 'nobody'.*known: anna, bob"),
        ("anna@7", r"persona 'anna' has no version 7; versions: anna@1, anna@2"),
        ("anna@0", "the version must be a number >= 1 or 'latest'"),
        ("anna@two", "the version must be a number >= 1 or 'latest'"),
        ("Anna", "invalid persona reference 'Anna'"),
        ("", "invalid persona reference ''"),
    ],
)
def test_unknown_or_malformed_references_are_clear_errors(filled, ref, expected):
    with pytest.raises(PersonaError, match=expected):
        personas.resolve(filled, ref)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"name": "x", "voice": "en-us", "params": {"pitch": 300}}, "pitch: Input should be less"),
        ({"name": "x", "voice": "en-us", "params": {"speed": 2}}, "unknown parameter.*'speed'"),
        ({"name": "x", "voice": "xx-none"}, "unknown voice 'xx-none'"),
        ({"name": "x", "voice": "en-us", "generator": "nope"}, "nope"),
        ({"name": "X y", "voice": "en-us"}, "name: String should match pattern"),
        ({"name": "x", "voice": "en-us", "imitates_real_person": True}, "needs a consent_id"),
        ({"name": "x", "voice": "en-us", "colour": "red"}, "colour: Extra inputs"),
    ],
)
def test_create_rejects_bad_specs_naming_the_problem(registry, spec, expected):
    with pytest.raises(PersonaError, match=expected):
        personas.create(registry, spec)
    assert personas.names(registry) == []


def test_create_needs_an_existing_consent_record(registry):
    spec = {"name": "x", "voice": "en-us", "imitates_real_person": True, "consent_id": "ghost"}
    with pytest.raises(consent.ConsentError, match="unknown consent 'ghost'.*known: none"):
        personas.create(registry, spec)
    assert personas.names(registry) == []


def test_an_existing_version_is_never_overwritten(filled):
    before = filled.read_bytes(layout.persona("bob", 1))
    assert not personas.write_new(filled, layout.persona("bob", 1), b"{}")
    assert filled.read_bytes(layout.persona("bob", 1)) == before
    # A version someone else took (here: v2 written by hand) pushes create to the next one.
    v2 = personas.Persona(**{**personas.resolve(filled, "bob").model_dump(), "version": 2})
    assert personas.write_new(filled, layout.persona("bob", 2), personas.dump_persona(v2))
    made = personas.create(filled, {"name": "bob", "voice": "en-gb", "params": {"rate_wpm": 140}})
    assert made.ref == "bob@3"
    assert [n for n in filled.list(layout.persona_dir("bob")) if ".tmp-" in n] == []


def test_apply_merges_params_and_names_a_foreign_generator(filled):
    espeak = build_generator("espeak", {"rate_wpm": 170})
    voice, language, params = personas.apply(personas.resolve(filled, "anna@2"), espeak)
    assert (voice, language) == ("en-us+f3", "en-us")
    assert params == {**espeak.params, "pitch": 64, "rate_wpm": 160}

    class OtherEngine(EspeakGenerator):
        name = "espeak-other"

    with plugins.register(plugins.GENERATORS, "espeak-other", OtherEngine):
        other = personas.create(
            filled, {"name": "carl", "generator": "espeak-other", "voice": "de"}, now=T0
        )
    with pytest.raises(PersonaError, match="made for generator 'espeak-other'.*uses 'espeak'"):
        personas.apply(other, espeak)
