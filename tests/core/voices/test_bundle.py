"""Persona bundles: export/import round trips, and an import that is checked whole first."""

from __future__ import annotations

import copy

import pytest

from audio_synth_core.store.storage import Store
from audio_synth_core.voices import bundle as bundles
from audio_synth_core.voices import consent, personas
from audio_synth_core.voices.personas import PersonaError


def _tree(store: Store) -> dict[str, bytes]:
    """Every persona and consent file of a registry, by path."""
    out = {}
    for name in personas.names(store):
        for v in personas.versions(store, name):
            rel = f"registry/personas/{name}/v{v}.json"
            out[rel] = store.read_bytes(rel)
    for record in consent.list_records(store):
        out[record.id] = store.read_bytes(f"registry/consent/{record.id}.json")
    return out


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_round_trip_into_a_fresh_registry_is_identical(filled, tmp_path, suffix):
    bundle = bundles.export_bundle(filled)
    assert [p["name"] + str(p["version"]) for p in bundle["personas"]] == ["anna1", "anna2", "bob1"]
    assert [c["id"] for c in bundle["consent"]] == ["anna"]
    data = bundles.dump_bundle(bundle, f"personas.{suffix}")
    fresh = Store(str(tmp_path / "fresh"))
    result = bundles.import_bundle(fresh, data)
    assert result == {"written": ["anna", "anna@1", "anna@2", "bob@1"], "skipped": []}
    assert bundles.export_bundle(fresh) == bundle
    assert _tree(fresh) == _tree(filled)  # byte for byte, created_at included
    # Importing again changes nothing.
    assert bundles.import_bundle(fresh, data)["written"] == []
    assert [e["action"] for e in consent.audit_log(fresh)] == ["import"]


def test_round_trip_through_s3(filled, s3_bucket):
    remote = Store(f"s3://{s3_bucket}/out")
    bundles.import_bundle(remote, bundles.export_bundle(filled))
    assert bundles.export_bundle(remote) == bundles.export_bundle(filled)
    assert personas.resolve(remote, "anna").params == {"pitch": 64, "rate_wpm": 160}


def test_export_of_named_personas(filled):
    bundle = bundles.export_bundle(filled, ["anna@1", "bob"], with_consent=False)
    assert [(p["name"], p["version"]) for p in bundle["personas"]] == [("anna", 1), ("bob", 1)]
    assert "consent" not in bundle
    with pytest.raises(PersonaError, match="unknown persona 'zed'"):
        bundles.export_bundle(filled, ["zed"])


def test_a_bundle_with_one_invalid_persona_writes_nothing(filled, tmp_path):
    bundle = bundles.export_bundle(filled)
    bad = copy.deepcopy(bundle)
    bad["personas"][2]["params"] = {"pitch": 500}  # bob@1
    bad["personas"][0]["voice"] = "xx-none"  # anna@1
    fresh = Store(str(tmp_path / "fresh"))
    with pytest.raises(PersonaError, match="nothing imported") as err:
        bundles.import_bundle(fresh, bad)
    assert "bob" in str(err.value) and "pitch" in str(err.value)
    assert "unknown voice 'xx-none'" in str(err.value)
    assert fresh.list("") == []  # not a persona, not a consent record, not an audit entry


def test_conflicting_versions_and_dangling_consent_are_named(filled, tmp_path):
    fresh = Store(str(tmp_path / "fresh"))
    personas.create(fresh, {"name": "bob", "voice": "en-gb", "params": {"rate_wpm": 300}})
    bundle = bundles.export_bundle(filled)
    with pytest.raises(PersonaError, match="bob@1 already exists in the registry and differs"):
        bundles.import_bundle(fresh, bundle)
    assert personas.versions(fresh, "anna") == []
    no_consent = bundles.export_bundle(filled, ["anna"], with_consent=False)
    with pytest.raises(PersonaError, match="links to consent 'anna', which is neither"):
        bundles.import_bundle(fresh, no_consent)
    with pytest.raises(PersonaError, match="not a persona bundle"):
        bundles.import_bundle(fresh, b"- just a list")
