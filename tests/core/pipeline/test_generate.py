"""One shard generated on a tmp_path store with the real espeak engine (with C2PA manifests:
sidecars written, resumed and quarantined with their FLAC; a manifest that cannot be made)."""

from __future__ import annotations

import dataclasses
import hashlib

import pyarrow as pa
import pytest
import soundfile as sf

from audio_synth_core.errors import ConfigError
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.pipeline.validate import validate_shard
from audio_synth_core.provenance.c2pa import (
    check_signing,
    material_from_signer,
    provenance_of,
    read_c2pa,
)
from audio_synth_core.provenance.records import parse_record
from audio_synth_core.provenance.signing import Signer, new_private_key_pem
from audio_synth_core.provenance.verify import verify_run
from audio_synth_core.store import layout, schema
from tests.core.pipeline.conftest import prepare
from tests.core.pipeline.test_portable import QuarantineAll


def test_generate_shard_writes_decodable_audio_and_commits_metadata(store, plan, espeak):
    (spec,) = prepare(store, plan)
    summary = generate_shard(spec, store, espeak, batch_size=2)
    assert (summary.n_items, summary.n_ok, summary.n_failed, summary.n_generated) == (4, 2, 2, 2)
    rows = store.read_table(layout.items_part(plan.run_id, spec.name)).to_pylist()
    for row in rows:
        if row["status"] != schema.STATUS_OK:
            assert row["error"] and row["audio_uri"] is None
            continue
        data = store.read_bytes(layout.audio(row["id"], "flac"))
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        audio, rate = sf.read(row["audio_uri"])
        assert rate == row["sample_rate_hz"] == 22050 and len(audio) == row["num_samples"]
        assert row["duration_s"] > 0.3 and -40 < row["rms_dbfs"] < 0
    assert prepare(store, plan) == []  # committed: nothing pending


def test_generate_shard_is_idempotent_and_regenerates_lost_audio(store, plan, espeak):
    (spec,) = prepare(store, plan)
    generate_shard(spec, store, espeak)
    again = generate_shard(spec, store, espeak)
    assert again.skipped and again.n_generated == 0
    # An unchanged item whose audio vanished is generated again, not trusted blindly.
    first = next(r for r in plan.items.to_pylist() if r["status"] == "pending")
    done = store.read_table(layout.items_part(plan.run_id, spec.name)).to_pylist()
    ok = next(r for r in done if r["id"] == first["id"])
    store.fs.rm(store.path(layout.audio(ok["id"], "flac")))
    carried = {**ok, "change": schema.CHANGE_UNCHANGED}
    rerun = runs.ShardSpec("rerun", 0, 1)
    store.write_table(
        layout.plan_part("rerun", rerun.name),
        pa.Table.from_pylist([carried], schema=schema.ITEM_SCHEMA),
    )
    summary = generate_shard(rerun, store, espeak)
    assert summary.n_generated == 1 and store.exists(layout.audio(ok["id"], "flac"))


def _rerun(store, rows: list[dict]) -> runs.ShardSpec:
    """A later run's shard whose plan carries ``rows`` over as unchanged items."""
    carried = [{**r, "change": schema.CHANGE_UNCHANGED} for r in rows]
    spec = runs.ShardSpec("rerun", 0, len(rows))
    store.write_table(
        layout.plan_part(spec.run_id, spec.name),
        pa.Table.from_pylist(carried, schema=schema.ITEM_SCHEMA),
    )
    return spec


def test_c2pa_sidecars_are_written_with_the_audio_kept_on_resume_and_quarantined_with_it(
    store, plan, espeak
):
    signer = Signer(new_private_key_pem(), "test key")
    material = material_from_signer(signer)
    (spec,) = prepare(store, plan)
    assert generate_shard(spec, store, espeak, c2pa=material).n_ok == 2
    rows = store.read_table(layout.items_part(plan.run_id, spec.name)).to_pylist()
    ok = [r for r in rows if r["status"] == schema.STATUS_OK]
    for row in ok:
        read = read_c2pa(store, row["audio_path"], material.trust_anchor_pem)
        assert read["validation_state"] == "Trusted" and not read["embedded"], read["failures"]
        record = provenance_of(read["manifest"])
        assert record["item_id"] == row["id"] and record["audio"]["sha256"] == row["sha256"]
        assert parse_record(row["provenance"]) == record  # a sidecar leaves the FLAC as it was
    # Resume: an unchanged item whose sidecar vanished is made again (both files); one whose
    # files are all there is reused with its sidecar as it was.
    lost, kept = (layout.c2pa_sidecar(r["audio_path"]) for r in ok)
    kept_bytes = store.read_bytes(kept)
    store.fs.rm(store.path(lost))
    rerun = _rerun(store, ok)
    assert generate_shard(rerun, store, espeak, c2pa=material).n_generated == 1
    assert store.exists(lost) and store.read_bytes(kept) == kept_bytes
    # Validation that withholds audio moves its sidecar along, and the signed listing follows.
    validate_shard(rerun, store, [QuarantineAll()])
    runs.commit(store, "catalog", rerun.run_id, {}, {}, signer=signer, c2pa=True)
    for sidecar in (lost, kept):
        assert not store.exists(sidecar) and store.exists(layout.quarantine(sidecar))
    listing = store.read_table(layout.provenance_files(rerun.run_id)).to_pylist()
    listed = {r["path"] for r in listing if r["kind"] == "c2pa"}
    assert listed == {layout.quarantine(lost), layout.quarantine(kept)}
    assert verify_run(store, rerun.run_id).ok


def test_a_manifest_that_cannot_be_made_fails_its_item_and_writes_nothing(store, plan, espeak):
    good = material_from_signer(Signer(new_private_key_pem(), "test key"))
    other = material_from_signer(Signer(new_private_key_pem(), "another key"))
    garbage = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    broken = dataclasses.replace(good, cert_chain_pem=garbage)
    # Checked before any work: a chain c2pa-rs refuses, or a key that does not match the chain.
    with pytest.raises(ConfigError, match="C2PA signing does not work here"):
        check_signing(broken)
    with pytest.raises(ConfigError, match="claimSignature.mismatch"):
        check_signing(dataclasses.replace(good, private_key_pem=other.private_key_pem))
    check_signing(good)
    (spec,) = prepare(store, plan)
    summary = generate_shard(spec, store, espeak, c2pa=broken)
    assert (summary.n_ok, summary.n_failed) == (0, 4)
    rows = store.read_table(layout.items_part(plan.run_id, spec.name)).to_pylist()
    assert sum("C2pa" in (r["error"] or "") for r in rows) == 2  # the two speakable rows
    assert not store.exists("audio")  # neither audio nor sidecar: nothing half-written
