"""End to end: a catalog run marks every file, `audio-synth detect` finds the marks and maps them
back to items through the run's table, ``watermark.enabled: false`` marks nothing, and the key
shows up in no output, log or Prefect record."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audio_synth_core.config.models import RunConfig
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import planning
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.watermark import WatermarkKey, WatermarkSettings, key_from_text
from audio_synth_core.watermark.payload import payload_of
from flows.api import read_items, run_catalog
from flows.cli import app
from tests.conftest import small_config, write_catalog

pytestmark = pytest.mark.slow

ROWS = [
    {"id": "kettle", "text": "This sturdy kettle boils water in two minutes.", "language": "en"},
    {"id": "lamp", "text": "Diese Lampe ist leise und sparsam.", "language": "de"},
    {"id": "shop", "text": "The shop opens at nine every morning.", "language": "en"},
]


def _config(tmp_path: Path, output: Path, **watermark) -> dict:
    catalog = write_catalog(tmp_path / "catalog.csv", ROWS)
    return small_config(
        catalog,
        str(output),
        compute={"n_workers": 1},
        validation={"enabled": False},
        watermark=watermark,
    )


def _prefect_records() -> str:
    """Every flow run's parameters and every task run as Prefect's API holds them."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flows = [r.model_dump(mode="json") for r in client.read_flow_runs()]
        tasks = [r.model_dump(mode="json") for r in client.read_task_runs()]
    return json.dumps([flows, tasks], default=str)


def test_every_file_is_marked_detected_and_mapped_and_the_key_never_leaks(
    prefect_api, tmp_path, monkeypatch, capfd, caplog
):
    key_text = secrets.token_hex(32)
    monkeypatch.setenv("AUDIO_SYNTH_WATERMARK_KEY", key_text)
    monkeypatch.setenv("AUDIO_SYNTH_HOME", str(tmp_path / "home"))
    out = tmp_path / "out"
    manifest = run_catalog(_config(tmp_path, out))
    run_id = manifest["run_id"]
    fingerprint = key_from_text(key_text).fingerprint
    assert manifest["watermark"]["key_fingerprint"] == fingerprint

    items = read_items(str(out))
    ok = items[items["status"] == "ok"]
    assert len(ok) == 3
    for row in ok.itertuples():
        assert row.watermark_payload == payload_of(row.id)
        assert row.created_at and row.created_at.endswith("+00:00")
        assert json.loads(row.provenance)["watermark"]["payload"] == row.watermark_payload
    table = Store(str(out)).read_table(layout.watermarks(run_id)).to_pandas()
    assert dict(zip(table["id"], table["watermark_payload"], strict=True)) == dict(
        zip(ok["id"], ok["watermark_payload"], strict=True)
    )

    # The CLI finds every mark in the folder and names the item each file is.
    result = CliRunner().invoke(app, ["detect", str(out / "audio"), "--lookup", str(out), "--json"])
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(found) == 3
    for r in found:
        item_id = Path(r["path"]).stem
        assert r["detected"] and r["confidence"] > 0.999
        assert r["payload"] == payload_of(item_id)
        assert r["matches"] == [
            {"run_id": run_id, "id": item_id, "audio_path": layout.audio(item_id, "flac")}
        ]
    # Another key (a file given on the command line wins over the variable) finds nothing.
    other = tmp_path / "other.key"
    other.write_text(secrets.token_hex(32))
    result = CliRunner().invoke(app, ["detect", str(out / "audio"), "--key-file", str(other)])
    assert result.exit_code == 0, result.output
    assert "MARKED" not in result.stdout and result.stdout.count("not marked") == 3

    # The key (hex or raw bytes) is in no output file, log line or Prefect record.
    secret = WatermarkKey(bytes.fromhex(key_text)).secret
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key_text.encode() not in data and secret not in data, path
    logs = capfd.readouterr()
    assert fingerprint in logs.out + logs.err + caplog.text  # says which key, not the key
    for text in (logs.out, logs.err, caplog.text, _prefect_records()):
        assert key_text not in text

    # A new key is a new plan: the no-op shortcut must not return the marked run.
    cfg = RunConfig.model_validate(_config(tmp_path, out))
    gen = build_generator(cfg.generator.name, cfg.generator.params)
    marks = [WatermarkSettings(WatermarkKey(bytes([i]) * 32)).marks for i in (1, 2)]
    assert len({planning.plan_key(cfg, gen, m) for m in [None, *marks]}) == 3


def test_watermark_off_marks_nothing(prefect_api, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_SYNTH_WATERMARK_KEY", secrets.token_hex(32))
    out = tmp_path / "out"
    manifest = run_catalog(_config(tmp_path, out, enabled=False))
    assert "watermark" not in manifest
    items = read_items(str(out))
    assert (items["status"] == "ok").sum() == 3
    assert items["watermark_payload"].isna().all()
    assert not Store(str(out)).exists(layout.watermarks(manifest["run_id"]))
    result = CliRunner().invoke(app, ["detect", str(out / "audio")])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("not marked") == 3
