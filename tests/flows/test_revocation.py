"""A revoked consent withholds what every run of the output made with the voice: the next run of
any kind (even one that then fails its own consent check) moves the items of all earlier runs,
the chapters narrated with it and the editions holding them, the dataset clips, their augmented
copies and the exports, under quarantine/, with one audit entry per run; nothing else moves, and
later runs do not read the swept runs again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import consent, personas
from audio_synth_core.voices.consent import ConsentError
from flows.api import narrate_books, read_items, run_catalog, synthesize_dataset
from tests.conftest import small_config, write_catalog
from tests.core.audiobook.bookfiles import make_markdown_book

pytestmark = pytest.mark.slow

TEXT = """# Tales

## First

Anna went home. Tom stayed.

## Second

The sea was calm.
"""
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _cleo(out: Path, scope: list[str]) -> Store:
    """A persona imitating a real person, with a consent for ``scope``."""
    store = Store(str(out))
    consent.grant(store, "Cleo Example", scope, "ab" * 32, granted_at=T0, consent_id="cleo")
    personas.create(
        store,
        {"name": "cleo", "voice": "en-us+f3", "imitates_real_person": True, "consent_id": "cleo"},
        now=T0,
    )
    return store


def _files(out: Path, under: str) -> set[str]:
    return {str(p.relative_to(out)) for p in (out / under).rglob("*") if p.is_file()}


def test_revoked_narrator_withholds_its_chapter_and_the_edition(prefect_api, tmp_path):
    out = tmp_path / "out"
    store = _cleo(out, ["audiobook"])
    folder = make_markdown_book(tmp_path / "tales", TEXT)
    (folder / "book.yaml").write_text(
        (folder / "book.yaml").read_text() + "chapters:\n  - number: 2\n    persona: cleo\n"
    )
    config = {"compute": {"n_workers": 1}, "tracking": {"experiment": "tests-revocation"}}
    first = narrate_books(str(folder), str(out), config)
    (book,) = first["books"]
    chunks = read_items(str(out))
    cleo_chunks = set(chunks.loc[chunks["persona"] == "cleo@1", "id"])
    assert cleo_chunks and len(cleo_chunks) < len(chunks)
    by_number = {c["number"]: c for c in book["chapters"]}
    second_dir = layout.audiobook_chapter_dir(book["book_id"], by_number[2]["key"])
    edition = book["book_json"].rsplit("/", 1)[0]
    affected = _files(out, second_dir) | _files(out, edition)
    before = _files(out, "audiobooks")
    assert affected and affected < before

    consent.revoke(store, "cleo", "subject withdrew")
    # The book still names cleo: the run fails its consent check, after the sweep.
    with pytest.raises(ConsentError, match="consent 'cleo' .*was revoked"):
        narrate_books(str(folder), str(out), config)
    assert _files(out, "audiobooks") == before - affected
    assert _files(out, "quarantine/audiobooks") == {f"quarantine/{f}" for f in affected}
    for row in chunks.itertuples():
        assert (out / row.audio_path).exists() == (row.id not in cleo_chunks)
    entry = consent.audit_log(store)[-1]
    assert entry["action"] == "quarantine" and entry["run_id"] == first["run_id"]
    assert set(entry["items"]) == cleo_chunks and set(entry["files"]) == affected


SPEC = {
    "name": "kws-revocation",
    "seed": 2,
    "texts": [{"name": "cmds", "kind": "lines", "lines": ["yes", "no", "stop"]}],
    "speakers": {"voices": ["en-us"], "count": 1, "personas": ["cleo"]},
    "size": {"utterances": 8},
    "augmentation": {"copies": 1, "noise": {"snr_db": [15, 20], "types": ["white"]}},
    "quality_filter": {"max_wer": None, "min_snr_db": None, "min_speaker_similarity": None},
    "splits": {"ratios": {"train": 0.5, "test": 0.5}, "disjoint_by": ["speaker"]},
    "output": {"exports": ["nemo"]},
    "compute": {"n_workers": 1, "retries": 1, "retry_delay_s": 0.5},
    "tracking": {"experiment": "tests-revocation", "sample_audio": 0},
}


def test_revoked_speaker_withholds_clips_copies_and_exports(prefect_api, tmp_path):
    out = tmp_path / "out"
    store = _cleo(out, ["dataset"])
    first = synthesize_dataset(SPEC, str(out), workers=1)
    made = store.read_tables(layout.dataset_dir(first["run_id"])).to_pandas()
    cleo = made[made["speaker_id"] == "persona-cleo"]
    others = made[(made["speaker_id"] != "persona-cleo") & made["audio_path"].notna()]
    assert len(cleo) and len(others) and cleo["augmented"].any()
    exports = _files(out, layout.dataset_export_dir(first["run_id"]))
    assert exports

    consent.revoke(store, "cleo", "subject withdrew")
    spec = {**SPEC, "speakers": {"voices": ["en-us", "en-gb"], "count": 2}}  # cleo is gone
    second = synthesize_dataset(spec, str(out), workers=1)
    withheld = second["consent_revoked"]
    assert [r["run_id"] for r in withheld["runs"]] == [first["run_id"]]
    assert withheld["personas"] == ["cleo@1"]
    assert second["metrics"]["items_withheld_consent"] == withheld["items"] > 0
    for rel in cleo["audio_path"]:
        assert not (out / rel).exists() and (out / layout.quarantine(rel)).exists()
    for rel in others["audio_path"]:
        assert (out / rel).exists()
    assert not _files(out, layout.dataset_export_dir(first["run_id"]))
    assert exports <= {f[len("quarantine/") :] for f in _files(out, "quarantine")}
    assert _files(out, layout.dataset_export_dir(second["run_id"]))  # the new run's own


def _catalog(tmp_path: Path, out: Path, rows: list[dict], name: str) -> dict:
    catalog = write_catalog(tmp_path / f"{name}.csv", rows)
    config = small_config(
        catalog, str(out), compute={"n_workers": 1}, validation={"enabled": False}
    )
    return run_catalog(config)


def _rows(n: int) -> list[dict]:
    """Run ``n``'s catalog: one row of cleo's (c<n>) and one of a plain voice (p<n>)."""
    return [
        {"id": f"c{n}", "text": f"Cleo reads line {n}.", "persona": "cleo"},
        {"id": f"p{n}", "text": f"A plain voice reads line {n}.", "voice": "en-us"},
    ]


def test_every_earlier_run_of_every_kind_is_swept_once(prefect_api, tmp_path):
    out = tmp_path / "out"
    store = _cleo(out, ["catalog", "dataset"])
    plain = {"voice": "en-us"}
    # Two catalog runs with different cleo rows (the second's previous run is the first, which
    # a sweep of the previous run only would never see again), then a dataset run.
    first = _catalog(tmp_path, out, _rows(1), "one")
    one = read_items(str(out), first["run_id"]).set_index("catalog_id")
    second = _catalog(tmp_path, out, _rows(2), "two")
    two = read_items(str(out), second["run_id"]).set_index("catalog_id")
    data = synthesize_dataset(SPEC, str(out), workers=1)
    made = store.read_tables(layout.dataset_dir(data["run_id"])).to_pandas()
    clips = made.loc[made["speaker_id"] == "persona-cleo", "audio_path"].dropna()
    others = made.loc[made["speaker_id"] != "persona-cleo", "audio_path"].dropna()
    assert len(clips) and _files(out, layout.dataset_export_dir(data["run_id"]))

    consent.revoke(store, "cleo", "subject withdrew")
    third = _catalog(tmp_path, out, [{"id": "p3", "text": "Plain three.", **plain}], "three")
    withheld = third["consent_revoked"]
    by_run = {r["run_id"]: r for r in withheld["runs"]}
    assert list(by_run) == [first["run_id"], second["run_id"], data["run_id"]]  # oldest first
    assert by_run[first["run_id"]]["item_ids"] == [one.loc["c1", "id"]]
    assert by_run[second["run_id"]]["item_ids"] == [two.loc["c2", "id"]]
    assert by_run[data["run_id"]]["kind"] == "dataset" and by_run[data["run_id"]]["files"]
    assert third["metrics"]["items_withheld_consent"] == withheld["items"]
    assert third["metrics"]["runs_swept_consent"] == 3
    for rel in [one.loc["c1", "audio_path"], two.loc["c2", "audio_path"], *clips]:
        assert not (out / rel).exists() and (out / layout.quarantine(rel)).exists()
    for rel in [one.loc["p1", "audio_path"], two.loc["p2", "audio_path"], *others]:
        assert (out / rel).exists()
    assert not _files(out, layout.dataset_export_dir(data["run_id"]))
    audit = [e for e in consent.audit_log(store) if e["action"] == "quarantine"]
    assert {e["run_id"]: e["items"] for e in audit} == {r: by_run[r]["item_ids"] for r in by_run}

    # The next run reads only the run made since (the third), and withholds nothing again.
    n_entries = len(consent.audit_log(store))
    rows = [{"id": "p3", "text": "Plain three.", **plain}, {"id": "p4", "text": "Four.", **plain}]
    fourth = _catalog(tmp_path, out, rows, "four")
    assert "consent_revoked" not in fourth
    assert fourth["metrics"]["items_withheld_consent"] == 0
    assert fourth["metrics"]["runs_swept_consent"] == 1
    assert len(consent.audit_log(store)) == n_entries
    covered = store.read_json(layout.REVOCATION_SWEEPS)["consents"]["cleo"]["runs"]
    swept = [first["run_id"], second["run_id"], data["run_id"], third["run_id"]]
    assert covered == dict.fromkeys(swept, "complete")
