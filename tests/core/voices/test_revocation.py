"""A revoked consent withholds exactly the audio made with it, once, with an audit entry."""

from __future__ import annotations

import io

import pytest
import soundfile as sf

from audio_synth_core.config.models import parse_config
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import planning, runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import bundle, consent, revocation
from tests.conftest import small_config, write_catalog

ROWS = [
    {"id": "a", "text": "Anna reads the first line.", "persona": "anna@latest"},
    {"id": "b", "text": "Anna reads an older take.", "persona": "anna@1"},
    {"id": "c", "text": "Bob reads the weather.", "persona": "bob"},
    {"id": "d", "text": "A plain voice reads this.", "voice": "en-us"},
]


@pytest.fixture
def made(tmp_path, filled):
    """A complete catalog run (core pipeline, no Prefect) with two items of anna, one of bob and
    one plain voice."""
    out = Store(str(tmp_path / "out"))
    bundle.import_bundle(out, bundle.export_bundle(filled))
    cfg = parse_config(small_config(write_catalog(tmp_path / "c.csv", ROWS), out.url))
    espeak = build_generator("espeak", {})
    plan = planning.build_plan(cfg, espeak, out)
    for spec in runs.prepare(
        out,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    ):
        generate_shard(spec, out, espeak)
    runs.commit(out, "catalog", plan.run_id, {}, {})
    items = runs.read_items(out, plan.run_id).set_index("catalog_id")
    assert (items["status"] == "ok").all()
    return out, plan.run_id, items


@pytest.mark.parametrize("action", ["quarantine", "remove"])
def test_revocation_withholds_exactly_the_affected_items(made, action):
    out, run_id, items = made
    assert revocation.sweep(out, out, run_id, action) is None  # nothing revoked yet
    consent.revoke(out, "anna", "subject withdrew")
    done = revocation.sweep(out, out, run_id, action)
    affected = sorted(items.loc[["a", "b"], "id"])
    assert done is not None and sorted(done["item_ids"]) == affected
    assert done["items"] == 2 and done["personas"] == ["anna@1", "anna@2"]
    assert done["consent_ids"] == ["anna"] and done["action"] == action
    for cid, row in items.iterrows():
        here = out.exists(row["audio_path"])
        withheld = out.exists(layout.quarantine(row["audio_path"]))
        if cid in ("a", "b"):
            assert not here and withheld == (action == "quarantine")
        else:
            assert here and not withheld
    if action == "quarantine":  # the file is kept intact, only out of the deliverable tree
        data = out.read_bytes(layout.quarantine(items.loc["a", "audio_path"]))
        audio, rate = sf.read(io.BytesIO(data))
        assert (
            rate == items.loc["a", "sample_rate_hz"] and len(audio) == items.loc["a", "num_samples"]
        )
    entry = consent.audit_log(out)[-1]
    assert entry["action"] == action and sorted(entry["items"]) == affected
    assert entry["run_id"] == run_id and entry["consent_ids"] == ["anna"]
    assert out.read_json(done["audit"]) == entry
    # Idempotent: the next sweep finds nothing left to withhold and writes no entry.
    n_entries = len(consent.audit_log(out))
    assert revocation.sweep(out, out, run_id, action) is None
    assert len(consent.audit_log(out)) == n_entries
