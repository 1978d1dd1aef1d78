"""Process environment and the one Prefect API a run talks to.

Prefect's "ephemeral" mode starts a temporary API server in the flow process and again in every Dask
worker (25-30 s each, see STACK.md). Instead a run uses PREFECT_API_URL when it is set, or starts one
local server, exports its URL, and every worker (started afterwards, so inheriting the environment)
reports to it.
"""

from __future__ import annotations

import contextlib
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
