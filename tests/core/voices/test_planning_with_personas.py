"""Catalog rows that name a persona: planned with its voice and parameters, its version in the
item id, consent checked before any work."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from audio_synth_core.config.models import parse_config
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import planning
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent, personas
from audio_synth_core.voices.consent import ConsentError
from tests.conftest import small_config, write_catalog
from tests.core.voices.conftest import EVIDENCE

ROWS = [
    {"id": "a", "text": "Anna reads the first line.", "persona": "anna@latest"},
    {"id": "b", "text": "Anna reads an older take.", "persona": "anna@1"},
    {"id": "c", "text": "Bob reads the weather.", "persona": "bob"},
    {"id": "d", "text": "A plain voice reads this.", "voice": "en-us"},
    {"id": "e", "text": "Nobody knows zed.", "persona": "zed@1"},
    {"id": "f", "text": "Both at once.", "persona": "bob", "voice": "en-us"},
    {"id": "g", "text": "A version that never was.", "persona": "anna@9"},
]


@pytest.fixture
def setup(tmp_path, filled):
    """A config whose output holds the ``filled`` registry."""
    out = Store(str(tmp_path / "out"))
    from audio_synth_core.voices import bundle

    bundle.import_bundle(out, bundle.export_bundle(filled))
    cfg = parse_config(small_config(write_catalog(tmp_path / "c.csv", ROWS), out.url))
    return cfg, out, build_generator("espeak", {})


def _by_row(plan):
    return {r["catalog_id"]: r for r in plan.items.to_pylist()}


def test_rows_with_personas_are_planned_with_voice_params_and_version(setup, tmp_path):
    cfg, out, espeak = setup
    items = _by_row(planning.build_plan(cfg, espeak, out))
    assert (items["a"]["persona"], items["a"]["voice"]) == ("anna@2", "en-us+f3")
    params = json.loads(items["a"]["generator_params"])
    assert params == {**espeak.params, "pitch": 64, "rate_wpm": 160}
    assert json.loads(items["a"]["attributes"]) == {
        "accent": "us",
        "age_band": "30-39",
        "gender": "female",
    }
    assert items["b"]["persona"] == "anna@1"
    assert json.loads(items["b"]["generator_params"])["pitch"] == 60
    assert (items["c"]["persona"], items["c"]["voice"]) == ("bob@1", "en-gb")
    assert items["d"]["persona"] is None
    assert json.loads(items["d"]["generator_params"]) == espeak.params
    assert {k for k, r in items.items() if r["status"] == "pending"} == {"a", "b", "c", "d"}
    assert "unknown persona 'zed'" in items["e"]["error"]
    assert "known: anna, bob" in items["e"]["error"]
    assert "names both a voice ('en-us') and a persona ('bob')" in items["f"]["error"]
    assert "persona 'anna' has no version 9; versions: anna@1, anna@2" in items["g"]["error"]
    # A row without a persona keeps the id it had before personas existed.
    plain = [r for r in ROWS if r["id"] == "d"]
    cfg_plain = parse_config(
        small_config(write_catalog(tmp_path / "p.csv", plain), str(tmp_path / "plain"))
    )
    alone = planning.build_plan(cfg_plain, espeak, Store(cfg_plain.output.url))
    assert alone.items.column("id").to_pylist() == [items["d"]["id"]]


def test_a_new_version_changes_only_the_ids_of_its_rows(setup):
    cfg, out, espeak = setup
    key = planning.plan_key(cfg, espeak)
    before = {k: r["id"] for k, r in _by_row(planning.build_plan(cfg, espeak, out)).items()}
    personas.create(out, {"name": "bob", "voice": "en-gb", "params": {"rate_wpm": 190}})
    assert planning.plan_key(cfg, espeak) != key  # a no-op re-run would not see the edit
    after = _by_row(planning.build_plan(cfg, espeak, out))
    assert after["c"]["persona"] == "bob@2"
    changed = {k for k, r in after.items() if r["id"] != before[k] and r["status"] == "pending"}
    assert changed == {"c"}


@pytest.mark.parametrize("state", ["missing", "expired", "revoked"])
def test_a_real_person_without_valid_consent_fails_the_plan(setup, state):
    cfg, out, espeak = setup
    if state == "revoked":
        consent.revoke(out, "anna")
    elif state == "expired":
        now = dt.datetime.now(dt.UTC)
        old = consent.grant(
            out,
            "Anna Example",
            ["catalog"],
            EVIDENCE,
            granted_at=now - dt.timedelta(days=30),
            expires_at=now - dt.timedelta(days=1),
            consent_id="anna-old",
        )
        personas.create(
            out,
            {
                "name": "anna",
                "voice": "en-us+f3",
                "imitates_real_person": True,
                "consent_id": old.id,
            },
        )
    else:
        out.fs.rm(out.path("registry/consent/anna.json"))
    expected = {
        "missing": "consent 'anna' does not exist",
        "expired": "consent 'anna-old' of 'Anna Example' expired at",
        "revoked": "consent 'anna' of 'Anna Example' was revoked at",
    }[state]
    with pytest.raises(ConsentError, match=expected) as err:
        planning.build_plan(cfg, espeak, out)
    assert "voice 'en-us+f3'" in str(err.value)
    assert out.list("runs") == [] and out.list("audio") == []
