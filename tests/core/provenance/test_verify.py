"""Signing a run's files at commit, then catching every kind of change to them."""

from __future__ import annotations

import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audio_synth_core.errors import ConfigError
from audio_synth_core.pipeline import runs
from audio_synth_core.provenance import files
from audio_synth_core.provenance.signing import Signer, new_private_key_pem
from audio_synth_core.provenance.verify import verify_run
from audio_synth_core.store import layout


def _listing(store, run_id):
    return pq.read_table(store.path(layout.provenance_files(run_id))).to_pylist()


def test_commit_signs_every_run_file_and_referenced_audio(signed_run, signer):
    store, run_id, manifest = signed_run
    rows = _listing(store, run_id)
    by_kind = {k: [r for r in rows if r["kind"] == k] for k in (files.KIND_RUN, files.KIND_AUDIO)}
    run_paths = {r["path"] for r in by_kind[files.KIND_RUN]}
    assert layout.manifest(run_id) in run_paths
    assert layout.items_part(run_id, "part-00000") in run_paths
    assert not run_paths & files.signature_files(run_id)
    items = store.read_table(layout.items_part(run_id, "part-00000")).to_pylist()
    ok = [i for i in items if i["status"] == "ok"]
    assert len(ok) == 2 and len(items) == 3  # the empty text failed: no audio
    assert {r["path"] for r in by_kind[files.KIND_AUDIO]} == {i["audio_path"] for i in ok}
    for r in rows:  # every hash is of the stored bytes
        data = store.read_bytes(r["path"])
        assert r["sha256"] == hashlib.sha256(data).hexdigest() and r["size_bytes"] == len(data)
    doc = store.read_json(layout.provenance_signature(run_id))
    assert doc["files"] == len(rows) and doc["public_key_fingerprint"] == signer.public_fingerprint
    assert manifest["provenance"]["public_key_fingerprint"] == signer.public_fingerprint
    assert store.exists(layout.LATEST)
    result = verify_run(store, None, signer.public_key_pem)
    assert result.ok, result.problems
    assert result.files_checked == len(rows) and result.key_source == "given"
    assert verify_run(store).key_source.startswith("run")


def test_tampered_missing_and_extra_files_are_each_named(signed_run):
    store, run_id, _ = signed_run
    audio = [r["path"] for r in _listing(store, run_id) if r["kind"] == files.KIND_AUDIO]
    part = layout.items_part(run_id, "part-00000")
    data = bytearray(store.read_bytes(audio[0]))
    data[-1] ^= 0x01  # one bit of one sample
    store.write_bytes(audio[0], bytes(data))
    store.fs.rm(store.path(audio[1]))
    store.write_bytes(f"{layout.reports_dir(run_id)}/injected.html", b"<p>hi</p>")
    store.write_bytes(part, store.read_bytes(part) + b"\0")
    result = verify_run(store, run_id)
    assert not result.ok
    assert result.signature == "valid"  # the listing itself is intact
    assert sorted(result.tampered) == sorted([audio[0], part])
    assert result.missing == [audio[1]]
    assert result.extra == [f"{layout.reports_dir(run_id)}/injected.html"]
    text = "\n".join(result.problems)
    for rel in (audio[0], audio[1], part, "injected.html"):
        assert rel in text


def test_audio_changed_before_signing_is_listed_with_its_record_and_reported(generated_run, signer):
    """Signing lists an item's audio with the sha256 recorded when it was written (it never
    reads the audio back): a file altered between its write and the commit is caught, and one
    already gone is listed as absent."""
    store, run_id = generated_run
    items = store.read_table(layout.items_part(run_id, "part-00000")).to_pylist()
    ok = [i for i in items if i["status"] == "ok"]
    changed, gone = ok[0]["audio_path"], ok[1]["audio_path"]
    data = bytearray(store.read_bytes(changed))
    data[-1] ^= 0x01
    store.write_bytes(changed, bytes(data))
    store.fs.rm(store.path(gone))
    runs.commit(store, "catalog", run_id, {"items": "x"}, {}, signer=signer)
    listed = {r["path"]: r for r in _listing(store, run_id)}
    assert listed[changed]["sha256"] == ok[0]["sha256"]  # the record, not the altered bytes
    assert listed[changed]["size_bytes"] == len(data)
    assert listed[gone]["size_bytes"] == files.ABSENT_SIZE
    result = verify_run(store, run_id)
    assert result.signature == "valid" and not result.ok
    assert result.tampered == [changed] and result.missing == [gone]


def test_wrong_key_altered_listing_and_unsigned_run_fail(signed_run):
    store, run_id, _ = signed_run
    other = Signer(new_private_key_pem(), "other")
    wrong = verify_run(store, run_id, other.public_key_pem)
    assert wrong.signature == "invalid" and not wrong.ok
    assert "signed by key" in wrong.problems[0]
    # A forger changes a file and rewrites the listing to match: the signature no longer holds.
    listing = layout.provenance_files(run_id)
    rows = _listing(store, run_id)
    store.write_bytes(rows[0]["path"], b"forged")
    rows[0].update(sha256=hashlib.sha256(b"forged").hexdigest(), size_bytes=6)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=files.LISTING_SCHEMA), buf)
    store.write_bytes(listing, buf.getvalue())
    forged = verify_run(store, run_id)
    assert forged.signature == "invalid" and "altered" in forged.problems[0]
    assert forged.tampered == [] and not forged.ok  # the files match the forged listing
    # A listing that is no longer Parquet at all: reported, not a crash.
    store.write_bytes(listing, store.read_bytes(listing) + b"\0")
    broken = verify_run(store, run_id)
    assert broken.tampered == [listing] and "not a readable listing" in broken.problems[-1]
    store.fs.rm(store.path(layout.provenance_signature(run_id)))
    unsigned = verify_run(store, run_id)
    assert unsigned.signature == "missing" and not unsigned.ok
    assert "manifest says it was signed" in unsigned.problems[0]


def test_no_run_is_a_config_error(tmp_path):
    from audio_synth_core.store.storage import Store

    with pytest.raises(ConfigError, match="no complete run"):
        verify_run(Store(str(tmp_path)))
    with pytest.raises(ConfigError, match="no run 'nope'"):
        verify_run(Store(str(tmp_path)), "nope")


def test_quarantined_audio_is_listed_where_it_is_and_absent_audio_is_stated(tmp_path, signer):
    from audio_synth_core.pipeline import runs
    from audio_synth_core.store.storage import Store

    store = Store(str(tmp_path))
    run_id = "r-1"
    here, moved, gone = (layout.audio(i, "flac") for i in ("aa01", "bb02", "cc03"))
    store.write_bytes(here, b"kept")
    store.write_bytes(layout.quarantine(moved), b"withheld")
    rows = [
        {"id": i, "status": "ok", "audio_path": rel}
        for i, rel in (("aa01", here), ("bb02", moved), ("cc03", gone))
    ]
    store.write_table(layout.items_part(run_id, "part-00000"), pa.Table.from_pylist(rows))
    validation = [{"id": "aa01", "quarantined": False}, {"id": "bb02", "quarantined": True}]
    store.write_table(
        layout.validation_part(run_id, "part-00000"), pa.Table.from_pylist(validation)
    )
    runs.commit(store, "catalog", run_id, {}, {}, signer=signer)
    listed = {r["path"]: r for r in _listing(store, run_id) if r["kind"] == files.KIND_AUDIO}
    assert set(listed) == {here, layout.quarantine(moved), gone}
    assert listed[gone]["sha256"] == files.ABSENT_SHA256
    assert store.read_json(layout.provenance_signature(run_id))["absent_at_signing"] == 1
    result = verify_run(store, run_id, signer.public_key_pem)
    assert result.signature == "valid" and result.missing == [gone] and not result.tampered
    assert result.problems == [f"missing: {gone} (already missing when the run was signed)"]


def test_sign_and_verify_on_s3(s3_bucket, signer):
    from audio_synth_core.pipeline import runs
    from audio_synth_core.store.storage import Store

    store = Store(f"s3://{s3_bucket}/out")
    run_id = "r-s3"
    rel = layout.audio("dd04", "wav")
    store.write_bytes(rel, b"RIFF audio")
    rows = [{"id": "dd04", "status": "ok", "audio_path": rel}]
    store.write_table(layout.items_part(run_id, "part-00000"), pa.Table.from_pylist(rows))
    runs.commit(store, "catalog", run_id, {}, {}, signer=signer)
    assert verify_run(Store(store.url), run_id, signer.public_key_pem).ok
    store.write_bytes(rel, b"RIFF other")
    store.write_bytes(f"{layout.run_dir(run_id)}/extra.json", b"{}")
    result = verify_run(Store(store.url), run_id, signer.public_key_pem)
    assert result.tampered == [rel] and result.extra == [f"{layout.run_dir(run_id)}/extra.json"]
