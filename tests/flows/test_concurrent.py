"""Two `audio-synth run` processes on one output at the same time (same config; two configs that
share items): the output lease runs them one after the other, so nothing is done or counted twice,
and LATEST.json, the manifests and MLflow agree."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import soundfile as sf

from audio_synth_core.store import layout
from tests.conftest import REPO, small_config, write_catalog

CLI = str(REPO / ".venv" / "bin" / "audio-synth")
ROWS = [
    {"id": f"r{i:02d}", "text": f"Line {i}: the ferry left the harbour at dawn.", "language": "en"}
    for i in range(30)
]


def _config(tmp_path: Path, name: str, rows: list[dict], out: Path) -> Path:
    cfg = small_config(
        write_catalog(tmp_path / f"{name}.csv", rows),
        str(out),
        compute={"n_workers": 1},
        validation={"enabled": False},
    ) | {"name": name}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def _run_together(tmp_path: Path, *configs: Path) -> list[subprocess.CompletedProcess]:
    """Start one CLI process per config at once (sharing the session's Prefect API); wait."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "DASK_TEMPORARY_DIRECTORY")
    }
    env["AUDIO_SYNTH_HOME"] = str(tmp_path / "home")
    procs = [
        subprocess.Popen(
            [CLI, "run", str(c)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    for d in done:
        assert d.returncode == 0, d.stdout + d.stderr
    return done


def _manifests(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("runs/*/manifest.json")}


def _items(out: Path, run_id: str) -> pd.DataFrame:
    parts = sorted((out / layout.items_dir(run_id)).glob("*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def _mlflow_runs(out: Path, run_id: str) -> int:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    found = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"tags.`audio_synth.run_id` = '{run_id}'",
    )
    return len(found)


def _assert_clean_and_decodable(out: Path, items: pd.DataFrame) -> None:
    assert items["id"].is_unique
    for row in items.itertuples():
        data = (out / layout.audio(row.id, row.audio_format)).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256
        assert sf.info(io.BytesIO(data)).frames == row.num_samples
    assert not list(out.rglob("*.tmp-*")), "a half-written file was left behind"
    assert not (out / layout.LEASE).exists()


def test_same_config_started_twice_at_once_runs_once(prefect_api, tmp_path):
    out = tmp_path / "out"
    cfg = _config(tmp_path, "same", ROWS, out)
    results = _run_together(tmp_path, cfg, cfg)
    manifests = _manifests(out)
    assert len(manifests) == 1
    ((run_id, manifest),) = manifests.items()
    # One process did the work; the other waited for the lease, then found the run complete.
    logs = [r.stdout + r.stderr for r in results]
    assert sum("already complete" in log for log in logs) == 1, logs
    assert any("in use by a catalog run" in log for log in logs), logs
    assert all(f"run {run_id}: 30 ok, 0 failed, 30 generated" in r.stdout for r in results)
    assert manifest["metrics"]["items_generated"] == 30
    assert json.loads((out / layout.LATEST).read_text()) == {
        "run_id": run_id,
        "kind": "catalog",
        "completed_at": manifest["completed_at"],
    }
    items = _items(out, run_id)
    assert len(items) == 30 and (items["status"] == "ok").all()
    _assert_clean_and_decodable(out, items)
    # One audio file and one C2PA sidecar per item, no strays from the second start.
    assert len(list(out.glob("audio/*/*.flac"))) == len(list(out.glob("audio/*/*.c2pa"))) == 30
    assert _mlflow_runs(out, run_id) == 1  # logged once, not once per process


def test_two_configs_sharing_one_output_run_one_after_the_other(prefect_api, tmp_path):
    out = tmp_path / "out"
    first = _config(tmp_path, "early", ROWS[:20], out)
    second = _config(tmp_path, "late", ROWS[10:], out)  # 10 items in common
    _run_together(tmp_path, first, second)
    manifests = sorted(_manifests(out).values(), key=lambda m: m["completed_at"])
    assert len(manifests) == 2
    before, after = manifests
    # Serialized: the later run planned against the finished earlier one, so the shared items
    # were generated once and counted as unchanged, not generated again.
    assert before["previous_run_id"] is None
    assert after["previous_run_id"] == before["run_id"]
    assert before["metrics"]["items_generated"] == 20
    assert after["metrics"]["items_generated"] == 10
    assert after["metrics"]["items_unchanged"] == 10
    assert after["changes"] == {"new": 10, "unchanged": 10, "gone": 10}
    latest = json.loads((out / layout.LATEST).read_text())
    assert (latest["run_id"], latest["completed_at"]) == (after["run_id"], after["completed_at"])
    for m in manifests:
        items = _items(out, m["run_id"])
        assert len(items) == 20 and (items["status"] == "ok").all()
        _assert_clean_and_decodable(out, items)
        assert _mlflow_runs(out, m["run_id"]) == 1
    # One audio file and one C2PA sidecar per item, no strays from the second start.
    assert len(list(out.glob("audio/*/*.flac"))) == len(list(out.glob("audio/*/*.c2pa"))) == 30
