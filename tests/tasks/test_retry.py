"""Shard tasks retry infrastructure errors and fail at once on deterministic ones (real Prefect)."""

from __future__ import annotations

import pytest

from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from tasks.retry import is_infrastructure_error

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (ConnectionResetError("peer reset"), True),
        (TimeoutError("read timed out"), True),
        (OSError(5, "I/O error"), True),
        (FileNotFoundError("plan part"), False),
        (PermissionError("denied"), False),
        (ValueError("bad parquet"), False),
        (KeyError("status"), False),
        (ZeroDivisionError(), False),
    ],
)
def test_only_infrastructure_errors_are_retried(exc, retry):
    assert is_infrastructure_error(exc) is retry


def _run_shard(store: Store, spec: ShardSpec) -> tuple[int, str]:
    from prefect import flow
    from prefect.client.orchestration import get_client

    from tasks.generate import generate_shard_task

    @flow(name="retry-probe")
    def probe() -> tuple[str, str]:
        task = generate_shard_task.with_options(retries=2, retry_delay_seconds=0)
        future = task.submit(spec, store, "espeak", "{}", 4)
        future.wait()
        return str(future.task_run_id), future.state.message or ""

    task_run_id, message = probe()
    with get_client(sync_client=True) as client:
        return client.read_task_run(task_run_id).run_count, message


def test_a_deterministic_failure_runs_once(prefect_api, tmp_path):
    store = Store(str(tmp_path))
    spec = ShardSpec("r1", 0, 4)
    store.write_bytes(layout.plan_part("r1", spec.name), b"this is not parquet")
    runs, message = _run_shard(store, spec)
    assert runs == 1
    assert "Parquet" in message or "parquet" in message


def test_a_lost_connection_is_retried(prefect_api):
    # Nothing listens on port 9: every read is refused, like a store that is down.
    runs, message = _run_shard(Store("http://127.0.0.1:9/out"), ShardSpec("r1", 0, 4))
    assert runs == 3
    assert "Cannot connect" in message or "connect" in message.lower()
