"""Consent records: grant, revoke, the check a run makes, the audit log, the Parquet export."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow.parquet as pq
import pytest

from audio_synth_core.store import layout
from audio_synth_core.voices import consent, personas
from audio_synth_core.voices.consent import ConsentError
from tests.core.voices.conftest import EVIDENCE, T0

DAY = dt.timedelta(days=1)


def test_grant_show_list_and_errors(registry, anna_consent):
    assert consent.show(registry, "anna") == anna_consent
    assert anna_consent.scope == ["audiobook", "catalog"]
    derived = consent.grant(registry, "Bo", ["dataset"], EVIDENCE.upper(), granted_at=T0)
    assert derived.id.startswith("consent-") and derived.evidence_sha256 == EVIDENCE
    assert [r.id for r in consent.list_records(registry)] == ["anna", derived.id]
    with pytest.raises(ConsentError, match="consent 'anna' already exists"):
        consent.grant(registry, "Other", ["catalog"], EVIDENCE, consent_id="anna")
    with pytest.raises(ConsentError, match=r"unknown consent 'nope'.*known: anna, consent-"):
        consent.show(registry, "nope")
    with pytest.raises(ConsentError, match="evidence_sha256: String should match"):
        consent.grant(registry, "X", ["catalog"], "not-a-hash")
    with pytest.raises(ConsentError, match="expires_at must be after granted_at"):
        consent.grant(registry, "X", ["catalog"], EVIDENCE, expires_at=T0 - DAY, granted_at=T0)
    with pytest.raises(ConsentError, match="scope: List should have at least 1 item"):
        consent.grant(registry, "X", [], EVIDENCE)


def _persona(consent_id, real=True):
    return personas.Persona(
        name="anna",
        version=3,
        voice="en-us+f3",
        imitates_real_person=real,
        consent_id=consent_id,
        created_at=T0,
    )


def _record(**changes):
    base = {
        "id": "c1",
        "subject": "Anna Example",
        "scope": ["catalog"],
        "granted_at": T0,
        "evidence_sha256": EVIDENCE,
    }
    return consent.parse_record(base | changes)


@pytest.mark.parametrize(
    ("records", "consent_id", "use", "expected"),
    [
        ([_record()], "c1", "catalog", None),
        ([_record(expires_at=T0 + 10 * DAY)], "c1", "catalog", None),
        ([], "c1", "catalog", "consent 'c1' does not exist"),
        ([_record(expires_at=T0 + DAY)], "c1", "catalog", "expired at 2026-01-02"),
        ([_record(revoked_at=T0 + DAY)], "c1", "catalog", "was revoked at 2026-01-02"),
        ([_record()], "c1", "dataset", "does not cover the use 'dataset' .scope: catalog."),
        ([_record(granted_at=T0 + 30 * DAY)], "c1", "catalog", "is only valid from 2026-01-31"),
    ],
)
def test_require_names_the_voice_and_what_is_wrong(records, consent_id, use, expected):
    now = T0 + 5 * DAY
    persona = _persona(consent_id)
    if expected is None:
        consent.require(records, [persona], use, now)
        return
    with pytest.raises(ConsentError, match=expected) as err:
        consent.require(records, [persona], use, now)
    assert "persona anna@3 (voice 'en-us+f3', imitates a real person)" in str(err.value)
    assert "nothing was generated" in str(err.value)


def test_require_ignores_presets_of_no_real_person():
    consent.require([], [_persona(None, real=False)], "catalog", T0)


def test_revoke_audits_and_exports(registry, anna_consent):
    revoked = consent.revoke(registry, "anna", "subject asked", now=T0 + DAY)
    assert revoked.revoked_at == T0 + DAY and revoked.revocation_reason == "subject asked"
    assert consent.show(registry, "anna") == revoked
    with pytest.raises(ConsentError, match="already revoked"):
        consent.revoke(registry, "anna")
    log = consent.audit_log(registry)
    assert [(e["action"], e["consent_id"]) for e in log] == [("grant", "anna"), ("revoke", "anna")]
    assert log[1]["reason"] == "subject asked" and log[1]["revoked_at"].startswith("2026-01-02")
    # One file per entry, named by time: listing order is time order.
    assert len(registry.list(layout.audit_dir())) == 2
    table = pq.read_table(io.BytesIO(registry.read_bytes(layout.consent_table())))
    assert table.column("id").to_pylist() == ["anna"]
    assert table.column("revoked_at")[0].as_py() == T0 + DAY
    assert pq.read_table(io.BytesIO(consent.consent_parquet([revoked]))).equals(table)


def test_registry_digest_follows_versions_expiry_and_revocation(filled):
    now = T0 + DAY
    first = consent.registry_digest(filled, now)
    assert consent.registry_digest(filled, now) == first
    personas.create(filled, {"name": "bob", "voice": "en-gb"})
    second = consent.registry_digest(filled, now)
    assert second != first
    consent.revoke(filled, "anna", now=now)
    assert consent.registry_digest(filled, now) != second
    expiring = consent.grant(
        filled, "Cy", ["catalog"], EVIDENCE, expires_at=T0 + 3 * DAY, granted_at=T0
    )
    assert expiring.active(T0 + 2 * DAY) and not expiring.active(T0 + 4 * DAY)
    assert consent.registry_digest(filled, T0 + 2 * DAY) != consent.registry_digest(
        filled, T0 + 4 * DAY
    )
