"""Process environment and the one Prefect API a run talks to.

Prefect's "ephemeral" mode starts a temporary API server in the flow process and again in every Dask
worker (25-30 s each, see STACK.md). Instead a run uses PREFECT_API_URL when it is set, or starts one
local server, exports its URL, and every worker (started afterwards, so inheriting the environment)
reports to it.

Order at the end matters: Prefect sends logs and events from background queue services that flush
at interpreter exit. If the server is stopped first, that flush retries against a dead port for
over a minute and ends with "Error logging to API". So the services are drained while the server is
still up, then the server stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def state_home() -> Path:
    return Path(os.environ.get("AUDIO_SYNTH_HOME", ".audio-synth")).absolute()


def configure_environment() -> None:
    """Defaults only: anything the user exported wins. Must run before ``import prefect``."""
    home = state_home()
    defaults = {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DASK_TEMPORARY_DIRECTORY": str(home / "dask"),
        "DASK_DISTRIBUTED__WORKER__DAEMON": "false",
        "DASK_LOGGING__DISTRIBUTED": "warning",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "true",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # Prefect creates PREFECT_HOME at import but not its parents: a fresh AUDIO_SYNTH_HOME warned.
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


def drain_prefect_services(timeout_s: float = 30.0) -> None:
    """Send what Prefect's log and event workers still hold, and stop them (a later call to Prefect
    starts fresh ones). Must run while their API server is still up."""
    if "prefect" not in sys.modules:  # nothing was ever queued
        return
    from prefect._internal.concurrency.services import QueueService

    # One registry holds every queue service (API logs, events), so this drains them all.
    QueueService.drain_all(timeout=timeout_s)


# Whether Prefect's console handler prints tracebacks of a failed flow run. The CLI turns them off
# (unless --debug): its own one-line error says where the full traceback was logged.
_CONSOLE = {"tracebacks": True}


def console_tracebacks(show: bool) -> None:
    """Show (the default) or hide tracebacks in Prefect's console output of later runs."""
    _CONSOLE["tracebacks"] = show


class _WithoutTraceback(logging.Formatter):
    """Formats a record as ``inner`` does, minus its traceback (the record itself is unchanged,
    so Prefect's API log handler still gets it)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _apply_console_tracebacks() -> None:
    if _CONSOLE["tracebacks"] or "prefect.main" not in sys.modules:
        return  # nothing to hide, or Prefect's logging is not set up yet (no console handler)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not isinstance(
            handler.formatter, _WithoutTraceback
        ):
            handler.setFormatter(_WithoutTraceback(handler.formatter))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def prefect_server(timeout_s: float = 120.0) -> Iterator[str]:
    """Start ``prefect server start`` on a free loopback port; yield its API URL; stop it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    home = state_home()
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "prefect-server.log", "ab")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PREFECT_API_URL": url},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(url):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"Prefect server exited early; see {home / 'prefect-server.log'}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not start in {timeout_s:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            drain_prefect_services()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """The API for this process and its workers: PREFECT_API_URL if set, else a local server."""
    configure_environment()
    _apply_console_tracebacks()
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_server() as url:
        os.environ["PREFECT_API_URL"] = url
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)
