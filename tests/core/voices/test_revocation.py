"""A revoked consent withholds exactly the audio made with it, in every run of the output (and the
committed shards of a run that stopped), once, with an audit entry per run; a swept run is not
read again."""

from __future__ import annotations

import io
from pathlib import Path

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


def catalog_run(
    out: Store, tmp_path: Path, rows: list[dict], name: str, shards: int | None = None
) -> str:
    """A catalog run through the core pipeline (no Prefect): complete, or with only its first
    ``shards`` shards committed (a run that stopped)."""
    cfg = parse_config(small_config(write_catalog(tmp_path / f"{name}.csv", rows), out.url))
    espeak = build_generator("espeak", {})
    plan = planning.build_plan(cfg, espeak, out)
    pending = runs.prepare(
        out,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )
    for spec in pending[:shards]:
        generate_shard(spec, out, espeak)
    if shards is None:
        runs.commit(out, "catalog", plan.run_id, {}, {})
    return plan.run_id


@pytest.fixture
def out(tmp_path, filled):
    """An output holding the registry (anna@1, anna@2 with consent ``anna``, bob@1)."""
    store = Store(str(tmp_path / "out"))
    bundle.import_bundle(store, bundle.export_bundle(filled))
    return store


@pytest.fixture
def made(tmp_path, out):
    """A complete catalog run with two items of anna, one of bob and one plain voice."""
    run_id = catalog_run(out, tmp_path, ROWS, "c")
    items = runs.read_items(out, run_id).set_index("catalog_id")
    assert (items["status"] == "ok").all()
    return out, run_id, items


@pytest.mark.parametrize("action", ["quarantine", "remove"])
def test_revocation_withholds_exactly_the_affected_items(made, action):
    out, run_id, items = made
    assert revocation.sweep(out, out, action) is None  # nothing revoked yet
    consent.revoke(out, "anna", "subject withdrew")
    done = revocation.sweep(out, out, action)
    affected = sorted(items.loc[["a", "b"], "id"])
    assert done is not None and done.scanned == [run_id]
    (run,) = done.runs
    assert run.run_id == run_id and run.kind == "catalog" and sorted(run.items) == affected
    assert done.items == 2 and run.personas == ["anna@1", "anna@2"]
    assert run.consent_ids == ["anna"] and done.action == action
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
    assert out.read_json(run.audit) == entry
    # Idempotent and cheap: the swept run is not read again, nothing is withheld or audited.
    n_entries = len(consent.audit_log(out))
    again = revocation.sweep(out, out, action)
    assert again is not None and again.scanned == [] and again.runs == []
    assert again.summary() is None and len(consent.audit_log(out)) == n_entries


def test_every_run_and_the_shards_of_a_stopped_run_are_swept_once(made, tmp_path):
    out, first, one = made
    # The second run no longer names a or b: a sweep of the previous run only would miss them.
    second = catalog_run(
        out,
        tmp_path,
        [
            {"id": "e", "text": "Anna reads a new line.", "persona": "anna@latest"},
            {"id": "f", "text": "Another plain line.", "voice": "en-us"},
        ],
        "e",
    )
    two = runs.read_items(out, second).set_index("catalog_id")
    # A run that stopped after its first shard (4 items of 5; the fifth is anna's too).
    rows = [
        {"id": "g0", "text": "Line zero of a long take.", "persona": "anna@1"},
        {"id": "g1", "text": "Line one of a long take.", "persona": "anna@1"},
        {"id": "h0", "text": "Plain line number zero.", "voice": "en-us"},
        {"id": "h1", "text": "Plain line number one.", "voice": "en-us"},
        {"id": "h4", "text": "Anna's last line.", "persona": "anna@1"},
    ]
    stopped = catalog_run(out, tmp_path, rows, "g", shards=1)
    three = out.read_tables(layout.items_dir(stopped)).to_pandas().set_index("catalog_id")
    assert len(three) == 4
    # A C2PA sidecar next to one of anna's FLACs goes with it.
    sidecar = layout.c2pa_sidecar(one.loc["a", "audio_path"])
    out.write_bytes(sidecar, b"c2pa manifest store")

    consent.revoke(out, "anna", "subject withdrew")
    done = revocation.sweep(out, out)
    expected = {
        first: sorted(one.loc[["a", "b"], "id"]),
        second: [two.loc["e", "id"]],
        stopped: sorted(three.loc[["g0", "g1"], "id"]),
    }
    assert {r.run_id: sorted(r.items) for r in done.runs} == expected
    assert [r.run_id for r in done.runs][-1] == stopped  # incomplete runs come last
    assert {r.run_id: r.kind for r in done.runs}[stopped] is None
    assert {r.run_id: r.files for r in done.runs}[first] == [sidecar]
    assert not out.exists(sidecar) and out.exists(layout.quarantine(sidecar))
    kept = [*one.loc[["c", "d"], "audio_path"], two.loc["f", "audio_path"]]
    kept += list(three.loc[["h0", "h1"], "audio_path"])
    assert all(out.exists(rel) for rel in kept)
    entries = {e["run_id"]: e for e in consent.audit_log(out) if e["action"] == "quarantine"}
    assert {r: sorted(e["items"]) for r, e in entries.items()} == expected
    summary = done.summary()
    assert summary["items"] == 5 and summary["runs_scanned"] == 3
    assert [r["run_id"] for r in summary["runs"]] == [r.run_id for r in done.runs]
    covered = out.read_json(layout.REVOCATION_SWEEPS)["consents"]["anna"]["runs"]
    assert covered == {first: "complete", second: "complete", stopped: ["part-00000.parquet"]}

    # Nothing changed: no run is read, nothing moves, no audit entry.
    n_entries = len(consent.audit_log(out))
    again = revocation.sweep(out, out)
    assert again.scanned == [] and again.runs == [] and len(consent.audit_log(out)) == n_entries

    # Should the stopped run complete after all (its last shard holds anna's h4), it is read
    # again in full, once.
    espeak = build_generator("espeak", {})
    shards = runs.make_shards(stopped, 5, 4)
    for spec in runs.pending(out, shards, lambda s: layout.items_part(s.run_id, s.name)):
        generate_shard(spec, out, espeak)
    runs.commit(out, "catalog", stopped, {}, {})
    h4 = runs.read_items(out, stopped).set_index("catalog_id").loc["h4", "id"]
    done = revocation.sweep(out, out)
    assert done.scanned == [stopped] and [(r.run_id, r.items) for r in done.runs] == [
        (stopped, [h4])
    ]
    covered = out.read_json(layout.REVOCATION_SWEEPS)["consents"]["anna"]["runs"]
    assert covered[stopped] == "complete"
    assert revocation.sweep(out, out).scanned == []
