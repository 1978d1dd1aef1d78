"""Personas and consent end to end: the CLI fills a registry on the output, catalog runs speak
rows through personas, a persona edit regenerates only its items, consent is checked before any
work, and a revocation withholds exactly the affected audio in the next run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent
from audio_synth_core.voices.consent import ConsentError
from flows.api import personas_create, read_items, run_catalog
from flows.cli import app
from tests.conftest import small_config, write_catalog

ROWS = [
    {"id": "p1", "text": "This kettle boils water in two minutes.", "persona": "anna@latest"},
    {"id": "p2", "text": "Please keep the receipt.", "persona": "anna@latest"},
    {"id": "p3", "text": "The shop opens at nine.", "persona": "bob@latest"},
    {"id": "p4", "text": "Lamps are on sale today.", "voice": "en-us"},
]


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def config(tmp_path: Path, out: Path, rows: list[dict], name: str = "c.csv") -> dict:
    return small_config(
        write_catalog(tmp_path / name, rows),
        str(out),
        compute={"n_workers": 1},
        validation={"enabled": False},
    )


def fill_registry(tmp_path: Path, out: Path, grant: bool = True) -> None:
    """anna (imitates a real person, consent ``anna``) and bob (a plain preset), via the CLI."""
    evidence = tmp_path / "release.pdf"
    evidence.write_bytes(b"signed release form")
    if grant:
        cli(
            *("consent", "grant", "-o", str(out), "--id", "anna", "--subject", "Anna Example"),
            *("--scope", "catalog,audiobook", "--evidence", str(evidence)),
        )
    cli(
        *("personas", "create", "anna", "--voice", "en-us+f3", "-p", "pitch=60"),
        *("--gender", "female", "--imitates-real-person", "--consent", "anna", "-o", str(out)),
    )
    cli("personas", "create", "bob", "--voice", "en-gb", "-p", "rate_wpm=150", "-o", str(out))


def test_cli_fills_and_reads_a_registry(tmp_path):
    out, other = tmp_path / "out", str(tmp_path / "other")
    fill_registry(tmp_path, out)
    assert "created anna@2" in cli(
        "personas", "create", "anna", "--edit", "-p", "pitch=64", "-o", str(out)
    )
    shown = json.loads(cli("personas", "show", "anna", "-o", str(out)))
    assert shown["version"] == 2 and shown["params"] == {"pitch": 64}
    assert shown["imitates_real_person"] and shown["attributes"]["gender"] == "female"
    assert "unknown persona 'zed'" in cli("personas", "show", "zed", "-o", str(out), code=2)
    assert "has no version 5" in cli("personas", "show", "anna@5", "-o", str(out), code=2)
    bad = cli("personas", "create", "x", "--voice", "xx", "-o", str(out), code=2)
    assert "unknown voice 'xx'" in bad
    listed = json.loads(cli("personas", "list", "--all", "--json", "-r", str(out)))
    assert [(p["name"], p["version"]) for p in listed] == [("anna", 1), ("anna", 2), ("bob", 1)]
    bundle = tmp_path / "personas.yaml"
    assert "3 persona versions and 1 consent" in cli(
        "personas", "export", str(bundle), "-o", str(out)
    )
    assert "imported 4" in cli("personas", "import", str(bundle), "-r", other)
    assert json.loads(cli("personas", "list", "--all", "--json", "-r", other)) == listed
    revoked = cli("consent", "revoke", "anna", "--reason", "asked", "-o", str(out))
    assert "revoked anna (Anna Example)" in revoked
    records = json.loads(cli("consent", "list", "--json", "-o", str(out)))
    assert records[0]["revoked_at"] and records[0]["revocation_reason"] == "asked"
    assert "give --registry URL or --output URL" in cli("consent", "list", code=2)


@pytest.mark.slow
def test_persona_edit_and_revocation_across_runs(prefect_api, tmp_path):
    out = tmp_path / "out"
    fill_registry(tmp_path, out)
    first = run_catalog(config(tmp_path, out, ROWS))
    one = read_items(str(out)).set_index("catalog_id")
    assert (one["status"] == "ok").all()
    personas = one["persona"].fillna("-").to_dict()
    assert personas == {"p1": "anna@1", "p2": "anna@1", "p3": "bob@1", "p4": "-"}
    assert one.loc["p3", "voice"] == "en-gb"
    assert json.loads(one.loc["p3", "generator_params"])["rate_wpm"] == 150
    # The consent records the run was planned under are in its MLflow run.
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    logged = mlflow.MlflowClient().list_artifacts(first["mlflow_run_id"], "consent")
    assert [a.path for a in logged] == ["consent/consent.parquet"]

    # Editing bob (a new version) regenerates exactly bob's item.
    personas_create(str(out), {"name": "bob", "voice": "en-gb", "params": {"rate_wpm": 190}})
    second = run_catalog(config(tmp_path, out, ROWS))
    two = read_items(str(out)).set_index("catalog_id")
    assert second["run_id"] != first["run_id"]
    assert two.loc["p3", "persona"] == "bob@2" and two.loc["p3", "id"] != one.loc["p3", "id"]
    for cid in ("p1", "p2", "p4"):
        assert two.loc[cid, "id"] == one.loc[cid, "id"]
    assert two["change"].to_dict() == {
        "p1": "unchanged",
        "p2": "unchanged",
        "p3": "new",
        "p4": "unchanged",
    }
    assert second["changes"] == {"new": 1, "unchanged": 3, "gone": 1}
    assert second["metrics"]["items_generated"] == 1
    # A slower rate: bob's new take is longer than the old one.
    assert two.loc["p3", "duration_s"] < one.loc["p3", "duration_s"]

    # Anna withdraws: the next run (whose catalog no longer names her) quarantines exactly her items.
    consent.revoke(Store(str(out)), "anna", "subject withdrew")
    third = run_catalog(config(tmp_path, out, ROWS[2:], "without-anna.csv"))
    withheld = third["consent_revoked"]
    anna_ids = sorted(two.loc[["p1", "p2"], "id"])
    assert sorted(withheld["item_ids"]) == anna_ids and withheld["action"] == "quarantine"
    assert third["metrics"]["items_withheld_consent"] == 2
    store = Store(str(out))
    for cid, row in two.iterrows():
        moved = store.exists(layout.quarantine(row["audio_path"]))
        assert moved == (cid in ("p1", "p2")) and store.exists(row["audio_path"]) != moved
    entry = consent.audit_log(store)[-1]
    assert entry["action"] == "quarantine" and sorted(entry["items"]) == anna_ids

    # A catalog that still names her fails before any work, naming the voice and why.
    runs_before = sorted(store.list("runs"))
    with pytest.raises(ConsentError, match="voice 'en-us\\+f3'.*consent 'anna' .*was revoked"):
        run_catalog(config(tmp_path, out, ROWS))
    assert sorted(store.list("runs")) == runs_before


@pytest.mark.slow
@pytest.mark.parametrize("state", ["unconsented", "expired"])
def test_a_voice_without_valid_consent_fails_before_any_audio(prefect_api, tmp_path, state):
    out = tmp_path / "out"
    if state == "expired":
        now = dt.datetime.now(dt.UTC)
        consent.grant(
            Store(str(out)),
            "Anna Example",
            ["catalog"],
            "ab" * 32,
            granted_at=now - dt.timedelta(days=30),
            expires_at=now - dt.timedelta(days=1),
            consent_id="anna",
        )
        fill_registry(tmp_path, out, grant=False)
        expected = "consent 'anna' of 'Anna Example' expired at"
    else:
        fill_registry(tmp_path, out)
        Store(str(out)).fs.rm(str(out / layout.consent("anna")))
        expected = "consent 'anna' does not exist"
    with pytest.raises(ConsentError, match=expected) as err:
        run_catalog(config(tmp_path, out, ROWS))
    assert "persona anna@1 (voice 'en-us+f3', imitates a real person)" in str(err.value)
    assert not (out / "audio").exists() and not (out / "runs").exists()
