"""A registry on a tmp_path store with a consented real-person persona and a plain one."""

from __future__ import annotations

import datetime as dt

import pytest

from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent, personas

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EVIDENCE = "ab" * 32


@pytest.fixture
def registry(tmp_path):
    return Store(str(tmp_path / "registry-root"))


@pytest.fixture
def anna_consent(registry):
    return consent.grant(
        registry,
        "Anna Example",
        ["catalog", "audiobook"],
        EVIDENCE,
        granted_at=T0,
        consent_id="anna",
    )


@pytest.fixture
def filled(registry, anna_consent):
    """anna@1, anna@2 (a real person, consented) and bob@1 (a plain preset)."""
    real = {"imitates_real_person": True, "consent_id": anna_consent.id}
    personas.create(
        registry,
        {"name": "anna", "voice": "en-us+f3", "params": {"pitch": 60}, **real},
        now=T0,
    )
    personas.create(
        registry,
        {
            "name": "anna",
            "voice": "en-us+f3",
            "params": {"pitch": 64, "rate_wpm": 160},
            "attributes": {"gender": "female", "age_band": "30-39", "accent": "us"},
            **real,
        },
        now=T0 + dt.timedelta(days=1),
    )
    personas.create(
        registry, {"name": "bob", "voice": "en-gb", "params": {"rate_wpm": 150}}, now=T0
    )
    return registry
