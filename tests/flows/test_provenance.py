"""End to end: a catalog run signed with a key from the environment, checked by
``audio-synth verify``; tampered, removed and extra files and a wrong key each fail it (exit 3)
naming the problem; the key never appears in any output or log."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from audio_synth_core.config.responsible import ProvenanceConfig
from audio_synth_core.errors import ConfigError
from audio_synth_core.provenance.records import parse_record
from audio_synth_core.provenance.signing import Signer, load_private_key, new_private_key_pem
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from flows.api import read_items, run_catalog
from flows.cli import app
from flows.runtime import state_home
from flows.signing import default_key_path, load_signer
from tests.conftest import small_config, write_catalog

pytestmark = pytest.mark.slow

ROWS = [
    {"id": "p1", "text": "This kettle boils water in two minutes.", "language": "en"},
    {"id": "p2", "text": "Keep the receipt for your warranty.", "language": "en"},
]
KEY_PEM = new_private_key_pem()


def _secret_fragments(pem: bytes) -> list[bytes]:
    """What would give the key away: its PEM body line and its raw bytes (hex and as is)."""
    raw = load_private_key(pem).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = pem.decode().splitlines()[1].encode()
    return [body, raw.hex().encode(), raw]


def _verify(*args: str):
    return CliRunner().invoke(app, ["verify", *args])


@pytest.fixture(scope="module")
def signed_output(tmp_path_factory, prefect_api):
    """One signed catalog run (1 worker), shared by the checks below; each check works on a copy
    of the output folder, so one check's tampering never leaks into another."""
    tmp = tmp_path_factory.mktemp("signed")
    out = tmp / "out"
    cfg = small_config(
        write_catalog(tmp / "catalog.csv", ROWS),
        str(out),
        compute={"n_workers": 1},
        validation={"enabled": False},
    )
    os.environ["AUDIO_SYNTH_SIGNING_KEY"] = KEY_PEM.decode()
    try:
        manifest = run_catalog(cfg)
    finally:
        os.environ.pop("AUDIO_SYNTH_SIGNING_KEY")
    public = tmp / "public.pem"
    public.write_bytes(Signer(KEY_PEM).public_key_pem)
    return out, manifest, public


def _copy(out: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(out, tmp_path / "copy"))


def test_signed_run_verifies_clean_and_key_never_leaks(signed_output, capfd):
    out, manifest, public = signed_output
    run_id = manifest["run_id"]
    result = _verify(str(out), "--public-key", str(public))
    assert result.exit_code == 0, result.output
    assert f"run {run_id}: intact" in result.output
    assert _verify(str(out), "--run", run_id).exit_code == 0  # the run's own public key
    store = Store(str(out))
    assert store.exists(layout.provenance_signature(run_id))
    assert store.read_bytes(layout.provenance_public_key(run_id)) == Signer(KEY_PEM).public_key_pem
    # The key is in no output file (MLflow's database included), log or console line.
    secrets = _secret_fragments(KEY_PEM)
    captured = capfd.readouterr()
    texts = [captured.out.encode(), captured.err.encode(), result.output.encode()]
    for root in (out, state_home()):
        texts += [p.read_bytes() for p in root.rglob("*") if p.is_file()]
    assert len(texts) > 10
    assert not [s for s in secrets for t in texts if s in t]


def test_items_carry_a_provenance_record(signed_output):
    out, manifest, _ = signed_output
    items = read_items(str(out), manifest["run_id"])
    ok = items[items["status"] == "ok"]
    assert len(ok) == 2
    if ok["provenance"].isna().all():
        pytest.skip("pipeline/generate.py does not fill the provenance column yet (W wires it)")
    for row in ok.itertuples():
        record = parse_record(row.provenance)
        assert record["item_id"] == row.id
        assert record["generator"]["name"] == "espeak" and record["generator"]["version"]
        assert record["voice"] == row.voice and record["seed"] == row.seed
        assert isinstance(record["params"], dict)
        assert record["audio"]["sha256"] and record["created_at"]
        if row.watermark_payload is not None and row.watermark_payload == row.watermark_payload:
            assert record["watermark"]["payload"] == int(row.watermark_payload)


def test_tampered_removed_and_extra_files_fail_verify(signed_output, tmp_path):
    out, manifest, public = signed_output
    copy = _copy(out, tmp_path)
    run_id = manifest["run_id"]
    items = read_items(str(copy), run_id)
    audio = sorted(items[items["status"] == "ok"]["audio_path"])
    tampered = copy / audio[0]
    data = bytearray(tampered.read_bytes())
    data[-2] ^= 0x10
    tampered.write_bytes(bytes(data))
    (copy / audio[1]).unlink()
    extra = copy / layout.run_dir(run_id) / "notes.txt"
    extra.write_text("not part of the run")
    result = _verify(str(copy), "--public-key", str(public))
    assert result.exit_code == 3, result.output
    assert f"tampered: {audio[0]}" in result.output
    assert f"missing: {audio[1]}" in result.output
    assert f"extra: {layout.run_dir(run_id)}/notes.txt" in result.output
    assert "1 tampered, 1 missing, 1 extra" in result.output


def test_wrong_public_key_fails_verify(signed_output, tmp_path):
    out, _, _ = signed_output
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(Signer(new_private_key_pem()).public_key_pem)
    result = _verify(str(out), "--public-key", str(wrong))
    assert result.exit_code == 3, result.output
    assert "signature: invalid" in result.output and "signed by key" in result.output
    missing = _verify(str(out), "--public-key", str(tmp_path / "none.pem"))
    assert missing.exit_code == 2 and "cannot read public key" in missing.output
    assert _verify(str(tmp_path / "empty")).exit_code == 2


def test_key_sources_env_file_and_created_once(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_SYNTH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUDIO_SYNTH_SIGNING_KEY", raising=False)
    created = load_signer(ProvenanceConfig())
    path = default_key_path()
    assert path.is_relative_to(tmp_path / "home")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_signer(ProvenanceConfig())
    assert again.public_fingerprint == created.public_fingerprint  # created once, then reused
    other = tmp_path / "other.pem"
    other.write_bytes(new_private_key_pem())
    from_file = load_signer(ProvenanceConfig(key_file=str(other)))
    assert from_file.public_fingerprint != created.public_fingerprint
    monkeypatch.setenv("AUDIO_SYNTH_SIGNING_KEY", KEY_PEM.decode())
    assert load_signer(ProvenanceConfig()).public_fingerprint == Signer(KEY_PEM).public_fingerprint
    assert load_signer(ProvenanceConfig(sign=False)) is None
    monkeypatch.setenv("AUDIO_SYNTH_SIGNING_KEY", "definitely not a key")
    with pytest.raises(ConfigError, match="environment variable AUDIO_SYNTH_SIGNING_KEY"):
        load_signer(ProvenanceConfig())
