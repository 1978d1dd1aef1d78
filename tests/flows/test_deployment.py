"""prefect.yaml: deploy against a real Prefect server, then a worker runs one scheduled-style run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from flows.api import read_items
from tests.conftest import REPO, small_config, write_catalog

pytestmark = pytest.mark.slow

PREFECT = [sys.executable, "-m", "prefect"]


def _prefect(*args: str, timeout: float = 240) -> str:
    done = subprocess.run(
        [*PREFECT, *args],
        cwd=REPO,
        env={**os.environ, "PWD": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


async def _deployment_and_runs(name: str):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        deployment = await client.read_deployment_by_name(name)
        runs = await client.read_flow_runs()
        return deployment, [r for r in runs if r.deployment_id == deployment.id]


def test_deploy_schedule_and_worker_run(prefect_api, tmp_path):
    _prefect("work-pool", "create", "audio-synth", "--type", "process", "--overwrite")
    _prefect("--no-prompt", "deploy", "--name", "catalog-nightly")
    deployment, _ = asyncio.run(_deployment_and_runs("catalog-generation/catalog-nightly"))
    assert [s.schedule.cron for s in deployment.schedules] == ["0 2 * * *"]
    assert deployment.work_pool_name == "audio-synth"

    rows = [
        {"id": f"n{i}", "text": f"Nightly item {i} is in stock.", "language": "en"}
        for i in range(6)
    ]
    cfg_path = tmp_path / "cfg.json"
    out = tmp_path / "out"
    cfg_path.write_text(json.dumps(small_config(write_catalog(tmp_path / "c.csv", rows), str(out))))
    _prefect(
        "deployment", "run", "catalog-generation/catalog-nightly", "--param", f"config={cfg_path}"
    )
    _prefect("worker", "start", "--pool", "audio-synth", "--run-once", timeout=400)

    _, runs = asyncio.run(_deployment_and_runs("catalog-generation/catalog-nightly"))
    finished = [r for r in runs if r.state and r.state.is_final()]
    assert finished and all(r.state.is_completed() for r in finished), [r.state for r in runs]
    items = read_items(str(out))
    assert len(items) == 6 and (items["status"] == "ok").all()
