"""Shared fixtures. Everything real: a Prefect server process, Dask clusters, a moto S3 server."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Keep Prefect/MLflow/Dask state of the test session out of the repo and the home directory.
_HOME = Path(tempfile.mkdtemp(prefix="audio-synth-tests-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)  # servers are stopped by then
os.environ["AUDIO_SYNTH_HOME"] = str(_HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)

from flows.runtime import configure_environment  # noqa: E402

configure_environment()  # environment defaults before Prefect is imported

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prefect_api():
    """One Prefect API server for the whole session, exported like a user would."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.runtime import prefect_server

    with prefect_server() as url:
        os.environ["PREFECT_API_URL"] = url
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
            # Flush queued API logs while the server is still up (else pytest waits at exit).
            from prefect._internal.concurrency.services import QueueService

            QueueService.drain_all(timeout=30)
        os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto server) on loopback, configured through the standard AWS variables."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        )
    }
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server):
    import uuid

    import s3fs

    name = f"bucket-{uuid.uuid4().hex[:8]}"
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server})
    fs.mkdir(name)
    return name


def write_catalog(path: Path, rows: list[dict]) -> Path:
    import csv

    keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("id", "text"), k))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def small_config(catalog: Path, output: str, **sections) -> dict:
    cfg = {
        "name": "test",
        "catalog": {"path": str(catalog)},
        "voices": {"default": "en-us", "by_language": {"en": "en-us", "de": "de", "fr": "fr-fr"}},
        "output": {"url": output},
        "sharding": {"items_per_shard": 4, "batch_size": 4},
        "compute": {"n_workers": 2, "retries": 1, "retry_delay_s": 0.5},
        "tracking": {"experiment": "tests", "sample_audio": 2},
        # The test catalogs hold deliberately broken rows, which count as not passed.
        "validation": {"gate": {"min_pass_rate": 0.5}, "n_boot": 200},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def show(output: str) -> str:
    """What ``audio-synth show OUTPUT`` prints (asserting it exits 0)."""
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["show", output])
    assert result.exit_code == 0, result.output
    return result.output
