"""The output lease: one holder at a time across real processes, on a local folder and on a real S3
API; a crashed holder's successor takes over; a holder that lost its lease cannot commit."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from audio_synth_core.pipeline import lease, runs
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from tests.conftest import REPO

# One contender: take the lease, log enter/leave times, hold it a moment, release.
CONTENDER = """
import json, sys, time
from audio_synth_core.pipeline import lease
from audio_synth_core.store.storage import Store
store = Store(sys.argv[1])
with lease.output_lease(store, "catalog", settle_s=float(sys.argv[3]), poll_s=0.1, ttl_s=30):
    entered = time.time()
    time.sleep(0.4)
    left = time.time()
with open(sys.argv[2], "a") as fh:
    fh.write(json.dumps([entered, left]) + "\\n")
"""

# A holder that never lets go (killed by the test).
HOLDER = """
import sys, time
from audio_synth_core.pipeline import lease
from audio_synth_core.store.storage import Store
lease.acquire(Store(sys.argv[1]), "catalog", settle_s=0.05, ttl_s=300)
print("held", flush=True)
time.sleep(600)
"""


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, **kw)


def _contend(url: str, log, n: int, settle_s: float) -> list[list[float]]:
    procs = [_python(CONTENDER, url, str(log), str(settle_s)) for _ in range(n)]
    assert [p.wait(timeout=120) for p in procs] == [0] * n
    return sorted(json.loads(line) for line in log.read_text().splitlines())


def _assert_disjoint(intervals: list[list[float]], n: int) -> None:
    assert len(intervals) == n
    for (_, left), (entered, _) in itertools.pairwise(intervals):
        assert entered >= left, f"two holders at once: {intervals}"


def test_lease_names_its_owner_and_is_removed_on_release(tmp_path):
    store = Store(str(tmp_path / "out"))
    with lease.output_lease(store, "validate", settle_s=0.05) as held:
        record = json.loads((tmp_path / "out" / layout.LEASE).read_text())
        assert record["token"] == held.token
        assert (record["kind"], record["pid"]) == ("validate", os.getpid())
        with pytest.raises(lease.LeaseError, match=rf"in use: validate run by pid {os.getpid()}"):
            lease.acquire(store, "catalog", wait_s=0.3, poll_s=0.1)
    assert not (tmp_path / "out" / layout.LEASE).exists()


def test_processes_started_together_hold_the_lease_one_at_a_time(tmp_path):
    log = tmp_path / "log.jsonl"
    _assert_disjoint(_contend(str(tmp_path / "out"), log, 4, settle_s=0.2), 4)


def test_one_holder_at_a_time_on_s3(s3_bucket, tmp_path):
    log = tmp_path / "log.jsonl"
    _assert_disjoint(_contend(f"s3://{s3_bucket}/out", log, 3, settle_s=0.5), 3)


def test_successor_takes_over_at_once_from_a_killed_holder(tmp_path):
    store = Store(str(tmp_path / "out"))
    holder = _python(HOLDER, store.url, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    dead = lease.read_lease(store)
    assert lease.is_live(dead)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # wait_s=5 is far below the 300 s ttl: only taking over the dead holder at once succeeds.
    with lease.output_lease(store, "catalog", settle_s=0.05, wait_s=5) as held:
        assert held.record["took_over"] == dead["token"]


def test_a_holder_on_another_host_blocks_until_its_heartbeat_expires(tmp_path):
    store = Store(str(tmp_path / "out"))
    now = time.time()
    record = {"token": "x", "kind": "train", "host": "elsewhere", "pid": 1, "ttl_s": 60}

    def stamp(t: float) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).isoformat()

    store.write_json(layout.LEASE, record | {"heartbeat_at": stamp(now - 5)})
    with pytest.raises(lease.LeaseError, match="train run by pid 1 on elsewhere"):
        lease.acquire(store, "catalog", wait_s=0.2, poll_s=0.05)
    store.write_json(layout.LEASE, record | {"heartbeat_at": stamp(now - 61)})
    with lease.output_lease(store, "catalog", settle_s=0.05, wait_s=0) as held:
        assert held.record["took_over"] == "x"


def test_heartbeat_keeps_a_long_run_alive(tmp_path):
    store = Store(str(tmp_path / "out"))
    with lease.output_lease(store, "catalog", settle_s=0.05, ttl_s=0.8) as held:
        first = held.record["heartbeat_at"]
        time.sleep(1.5)  # longer than the ttl: only the heartbeat keeps it
        assert lease.read_lease(store)["heartbeat_at"] > first
        with pytest.raises(lease.LeaseError, match="in use"):
            lease.acquire(store, "gc", wait_s=0.3, poll_s=0.05)


def test_a_holder_whose_lease_was_taken_over_cannot_commit(tmp_path):
    store = Store(str(tmp_path / "out"))
    with lease.output_lease(store, "catalog", settle_s=0.05) as held:
        taken = {**held.record, "token": "successor", "pid": 1, "host": "elsewhere"}
        store.write_json(layout.LEASE, taken)  # what a successor writes after our ttl ran out
        with pytest.raises(
            lease.LeaseError, match="lost the lease .* held by catalog run by pid 1"
        ):
            runs.commit(store, "catalog", "r-1", {}, {})
    assert not store.exists(layout.manifest("r-1"))
    assert not store.exists(layout.LATEST)
    assert lease.read_lease(store)["token"] == "successor"  # release leaves the successor's lease
