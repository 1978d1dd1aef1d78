"""End to end: catalog runs whose items carry C2PA manifests (``provenance.c2pa``, the default):
FLAC items get a sidecar, WAV items an embedded manifest, each read back with ``c2pa.Reader`` and
naming the item's watermark payload; unchanged items keep their sidecars; ``verify`` covers the
sidecars; ``gc`` deletes a superseded item's sidecar with its audio; off, none are written."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
from pathlib import Path

import c2pa
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audio_synth_core.provenance.c2pa import material_from_signer, provenance_of, read_c2pa
from audio_synth_core.provenance.signing import Signer, new_private_key_pem
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from flows.api import collect_garbage, read_items, run_catalog
from flows.cli import app
from tests.conftest import small_config, write_catalog

pytestmark = pytest.mark.slow

ROWS = [
    {"id": "p1", "text": "This kettle boils water in two minutes.", "language": "en"},
    {"id": "p2", "text": "Keep the receipt for your warranty.", "language": "en"},
    {"id": "p3", "text": "The lamp is quiet and saves power.", "language": "en"},
]
CHANGED = [
    *ROWS[:2],
    {"id": "p3", "text": "The lamp is quiet, bright and cheap.", "language": "en"},
]
KEY_PEM = new_private_key_pem()


def _config(tmp: Path, out: Path, rows: list[dict], name: str, fmt="flac", **sections) -> dict:
    """A catalog run's config: 1 worker, no validation."""
    cfg = small_config(
        write_catalog(tmp / f"{name}.csv", rows),
        str(out),
        compute={"n_workers": 1},
        validation={"enabled": False},
        **sections,
    )
    cfg["output"]["audio_format"] = fmt
    return cfg


def _run(*args, **sections) -> dict:
    """One catalog run (``_config``'s arguments) signed with KEY_PEM; its manifest."""
    os.environ["AUDIO_SYNTH_SIGNING_KEY"] = KEY_PEM.decode()
    try:
        return run_catalog(_config(*args, **sections))
    finally:
        os.environ.pop("AUDIO_SYNTH_SIGNING_KEY")


def _ok(out: Path, run_id: str):
    items = read_items(str(out), run_id)
    return items[items["status"] == "ok"]


def _payload(manifest: dict) -> int:
    binding = next(a["data"] for a in manifest["assertions"] if a["label"] == "c2pa.soft-binding")
    assert binding["alg"].startswith("org.audio-synth.watermark.")
    return int.from_bytes(base64.b64decode(binding["blocks"][0]["value"]), "big")


def _verify(out: Path) -> CliRunner:
    return CliRunner().invoke(app, ["verify", str(out)])


@pytest.fixture(scope="module")
def flac_runs(tmp_path_factory, prefect_api):
    """Two FLAC runs into one output, the second changing one row: (output, first, second)."""
    tmp = tmp_path_factory.mktemp("c2pa-flac")
    out = tmp / "out"
    first = _run(tmp, out, ROWS, "one")
    second = _run(tmp, out, CHANGED, "two")
    return out, first, second


def test_every_flac_item_has_a_sidecar_naming_its_watermark(flac_runs):
    out, _, second = flac_runs
    store = Store(str(out))
    anchor = material_from_signer(Signer(KEY_PEM)).trust_anchor_pem
    assert second["provenance"]["c2pa"] is True
    assert second["changes"]["unchanged"] == 2  # their sidecars came with them
    ok = _ok(out, second["run_id"])
    assert len(ok) == 3
    for row in ok.itertuples():
        read = read_c2pa(store, row.audio_path, anchor)
        assert read["validation_state"] == "Trusted" and not read["embedded"], read["failures"]
        assert _payload(read["manifest"]) == row.watermark_payload
        assert provenance_of(read["manifest"])["item_id"] == row.id
        # The FLAC itself is as written: soundfile opens it, its hash is the row's.
        data = store.read_bytes(row.audio_path)
        assert hashlib.sha256(data).hexdigest() == row.sha256
        assert sf.info(io.BytesIO(data)).frames == row.num_samples
    listing = store.read_table(layout.provenance_files(second["run_id"])).to_pylist()
    sidecars = {r["path"] for r in listing if r["kind"] == "c2pa"}
    assert sidecars == {layout.c2pa_sidecar(p) for p in ok["audio_path"]}
    result = _verify(out)
    assert result.exit_code == 0, result.output
    # A dry run plans the ids the run made (C2PA is part of them): the same, complete run.
    preview = run_catalog(_config(out.parent, out, CHANGED, "two"), dry_run=True)
    assert preview["run_id"] == second["run_id"] and preview["complete"]


def test_verify_reports_a_tampered_sidecar(flac_runs, tmp_path):
    out, _, second = flac_runs
    copy = Path(shutil.copytree(out, tmp_path / "copy"))
    rel = layout.c2pa_sidecar(sorted(_ok(copy, second["run_id"])["audio_path"])[0])
    data = bytearray((copy / rel).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / rel).write_bytes(bytes(data))
    result = _verify(copy)
    assert result.exit_code == 3, result.output
    assert f"tampered: {rel}" in result.output


def test_gc_deletes_a_superseded_items_sidecar_with_its_audio(flac_runs, tmp_path):
    out, first, second = flac_runs
    copy = Path(shutil.copytree(out, tmp_path / "copy"))
    before = set(_ok(copy, first["run_id"])["audio_path"])
    kept = set(_ok(copy, second["run_id"])["audio_path"])
    (superseded,) = before - kept
    freed = collect_garbage(str(copy))
    assert freed["audio_files"] == 2  # the audio and its sidecar
    assert not (copy / superseded).exists()
    assert not (copy / layout.c2pa_sidecar(superseded)).exists()
    for rel in kept:
        assert (copy / rel).exists() and (copy / layout.c2pa_sidecar(rel)).exists()
    assert _verify(copy).exit_code == 0


def test_wav_items_embed_their_manifest_and_off_writes_none(prefect_api, tmp_path):
    on = _run(tmp_path, tmp_path / "on", ROWS[:2], "wav", "wav")
    store = Store(str(tmp_path / "on"))
    ok = _ok(tmp_path / "on", on["run_id"])
    assert len(ok) == 2
    for row in ok.itertuples():
        read = read_c2pa(store, row.audio_path)
        assert read["embedded"] and read["validation_state"] == "Valid"
        assert _payload(read["manifest"]) == row.watermark_payload
        data = store.read_bytes(row.audio_path)
        assert hashlib.sha256(data).hexdigest() == row.sha256  # the file as stored
        assert sf.info(io.BytesIO(data)).frames == row.num_samples
    off = _run(tmp_path, tmp_path / "off", ROWS[:2], "wav", "wav", provenance={"c2pa": False})
    assert "c2pa" not in off["provenance"]
    ok_off = _ok(tmp_path / "off", off["run_id"])
    # C2PA is part of an item's identity (an embedded manifest is other bytes): new ids.
    assert len(ok_off) == 2 and not set(ok_off["id"]) & set(ok["id"])
    assert not list((tmp_path / "off").rglob("*.c2pa"))
    for row in ok_off.itertuples():
        with pytest.raises(c2pa.C2paError):
            read_c2pa(Store(str(tmp_path / "off")), row.audio_path)
