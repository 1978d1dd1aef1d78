"""One lease per output root: at most one run (of any kind) or garbage collection works on an
output at a time; the others wait, then find their run complete or do their own.

The lease is one small JSON object, ``<root>/LEASE.json``, naming its owner (a random token, host,
pid, kind) and a heartbeat. It works on any fsspec store, including object stores without an
atomic create-if-absent, by *write then verify*:

1. read the lease; when a live owner holds it, wait (poll) and read again;
2. write our own lease (one atomic write: temp + rename locally, one PUT on S3);
3. wait ``settle_s`` and read it back: ours -> held; another token -> that writer won, go to 1.

Two acquirers that both saw a free lease both write; whichever wrote last is read back by both, so
exactly one proceeds, provided each writes within ``settle_s`` of its read (checked: a slower
writer backs off). A holder renews ``heartbeat_at`` from a daemon thread every ``ttl_s / 4``. A lease
is free when it is absent, its heartbeat is older than ``ttl_s`` (a crashed run on another host), or
its owner is a dead process on this host (a crashed run's successor takes over at once).
``check_held`` runs before a run commits: a holder whose lease was taken over (it stalled longer
than ``ttl_s``) fails instead of writing a manifest. Everything the runs write is idempotent by
construction (content-addressed audio, deterministic parts, atomic writes), so even a taken-over
holder that was still working corrupts nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from audio_synth_core.errors import AudioSynthError
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

DEFAULT_TTL_S = 120.0


class LeaseError(AudioSynthError):
    """The output's lease could not be taken in time, or was lost to another owner."""


@dataclass
class Lease:
    """A lease this process holds on ``store``; ``lost`` is set when another owner took it."""

    store: Store
    record: dict[str, Any]
    ttl_s: float
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def token(self) -> str:
        return self.record["token"]


# Leases this process holds, by output URL (what ``check_held`` looks up at commit).
_HELD: dict[str, Lease] = {}
_HELD_LOCK = threading.Lock()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def read_lease(store: Store) -> dict[str, Any] | None:
    """The current lease record, or None when there is none (or it is unreadable: a torn or
    foreign object never blocks an output forever)."""
    try:
        return json.loads(store.read_bytes(layout.LEASE))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody reaped yet is a zombie: it does no work
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_live(record: dict[str, Any] | None, now: dt.datetime | None = None) -> bool:
    """Whether ``record`` still holds its output: heartbeat within its ttl and, when the owner
    is on this host, its process alive."""
    if not record:
        return False
    try:
        beat = dt.datetime.fromisoformat(record["heartbeat_at"])
        ttl_s = float(record.get("ttl_s", DEFAULT_TTL_S))
    except (KeyError, TypeError, ValueError):
        return False
    if ((now or _now()) - beat).total_seconds() > ttl_s:
        return False
    if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int):
        return _pid_alive(record["pid"])
    return True


def describe(record: dict[str, Any]) -> str:
    """``catalog run by pid 12 on host (heartbeat 3 s ago)``: who holds an output."""
    try:
        age = (_now() - dt.datetime.fromisoformat(record["heartbeat_at"])).total_seconds()
        beat = f"heartbeat {age:.0f} s ago"
    except (KeyError, TypeError, ValueError):
        beat = "no heartbeat"
    return (
        f"{record.get('kind', '?')} run by pid {record.get('pid')} on {record.get('host')} ({beat})"
    )


def _write(store: Store, record: dict[str, Any]) -> None:
    store.write_json(layout.LEASE, record)


def acquire(
    store: Store,
    kind: str,
    *,
    ttl_s: float = DEFAULT_TTL_S,
    wait_s: float | None = None,
    poll_s: float = 1.0,
    settle_s: float | None = None,
    on_wait: Callable[[str], Any] | None = None,
) -> Lease:
    """Take the output's lease, waiting up to ``wait_s`` (None: as long as it takes) while a live
    owner holds it; raises LeaseError naming the holder when the wait runs out."""
    settle_s = settle_s if settle_s is not None else (0.25 if store.is_local else 2.0)
    deadline = None if wait_s is None else time.monotonic() + wait_s
    told = False
    mine = None  # the token of our own write that we backed off from (not a rival's lease)
    read_lease(store)  # connect first, so that the timed read-to-write gap below is the requests'
    while True:
        started = time.monotonic()
        current = read_lease(store)
        if is_live(current) and current.get("token") != mine:
            if deadline is not None and time.monotonic() >= deadline:
                raise LeaseError(f"output {store.url!r} is in use: {describe(current)}")
            if on_wait is not None and not told:
                on_wait(f"output {store.url} is in use by a {describe(current)}; waiting for it")
                told = True
            time.sleep(poll_s * random.uniform(0.75, 1.25))
            continue
        stamp = _now().isoformat()
        record = {
            "token": uuid.uuid4().hex,
            "kind": kind,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "acquired_at": stamp,
            "heartbeat_at": stamp,
            "ttl_s": ttl_s,
            "took_over": current.get("token") if current and current.get("token") != mine else None,
        }
        _write(store, record)
        mine = record["token"]
        if time.monotonic() - started > settle_s / 2:
            # Too slow between read and write for the verify step to be safe: back off, retry.
            time.sleep(settle_s * random.uniform(1.0, 2.0))
            continue
        time.sleep(settle_s)
        back = read_lease(store)
        if back and back.get("token") == record["token"]:
            lease = Lease(store, record, ttl_s)
            _start_heartbeat(lease)
            with _HELD_LOCK:
                _HELD[store.url] = lease
            return lease
        # Another writer won the race: it holds the lease now; loop and wait for it.


def _start_heartbeat(lease: Lease) -> None:
    def beat() -> None:
        while not lease._stop.wait(lease.ttl_s / 4):
            try:
                current = read_lease(lease.store)
                if not current or current.get("token") != lease.token:
                    lease.lost = True
                    return
                lease.record = {**lease.record, "heartbeat_at": _now().isoformat()}
                _write(lease.store, lease.record)
            except Exception:  # a failed renewal (flaky storage) is retried at the next beat
                continue

    lease._thread = threading.Thread(target=beat, name="audio-synth-lease", daemon=True)
    lease._thread.start()


def release(lease: Lease) -> None:
    """Stop the heartbeat and remove the lease when it is still ours."""
    lease._stop.set()
    if lease._thread is not None:
        lease._thread.join(timeout=5)
    with _HELD_LOCK:
        if _HELD.get(lease.store.url) is lease:
            del _HELD[lease.store.url]
    try:
        current = read_lease(lease.store)
        if current and current.get("token") == lease.token:
            lease.store.fs.rm(lease.store.path(layout.LEASE))
    except OSError:  # the lease then expires by its heartbeat; never mask the run's own error
        pass


@contextmanager
def output_lease(store: Store, kind: str, **options: Any) -> Iterator[Lease]:
    """Hold ``store``'s lease for the body of a run (see ``acquire`` for the options)."""
    lease = acquire(store, kind, **options)
    try:
        yield lease
    finally:
        release(lease)


def check_held(store: Store) -> None:
    """Before a run commits: raise LeaseError when this process took ``store``'s lease and another
    owner has since taken it over (nothing to check when this process holds none)."""
    with _HELD_LOCK:
        lease = _HELD.get(store.url)
    if lease is None:
        return
    current = read_lease(store)
    if lease.lost or not current or current.get("token") != lease.token:
        lease.lost = True
        holder = describe(current) if current else "nobody"
        raise LeaseError(
            f"lost the lease on {store.url!r} (now held by {holder}): this run stalled longer "
            f"than {lease.ttl_s:.0f} s; re-run the same command to resume"
        )
