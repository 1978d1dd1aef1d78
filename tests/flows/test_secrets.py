"""Secrets never leak: planted credentials go through a real catalog run (Python API, mapping
config) and a real validate run (CLI, YAML config) against a real S3 API, then every file the runs
wrote is searched for them: the bucket, MLflow's database and artifacts, Prefect's home (its
SQLite database included) and everything printed. The runs must still have used the credentials:
the catalog is served over HTTP behind Basic auth, so a redacted password would fail the run."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from audio_synth_core.config.secrets import REDACTED
from flows.api import read_items, run_catalog
from tests.conftest import REPO, small_config

pytestmark = pytest.mark.slow

CATALOG = "id,text,language\n" + "\n".join(
    f"s{i},Secret test sentence number {i} about the quiet harbour.,en" for i in range(6)
)


class _BasicAuthHandler(http.server.SimpleHTTPRequestHandler):
    expected = ""

    def do_HEAD(self) -> None:
        if self._authorized():
            super().do_HEAD()

    def do_GET(self) -> None:
        if self._authorized():
            super().do_GET()

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == self.expected:
            return True
        self.send_error(401, "credentials required")
        return False

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def catalog_server(tmp_path) -> Iterator[tuple[str, str]]:
    """The catalog over HTTP on loopback, readable only with user:password (yields URL, password)."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "catalog.csv").write_text(CATALOG, encoding="utf-8")
    password = f"urlpw-{uuid.uuid4().hex}"
    token = base64.b64encode(f"reader:{password}".encode()).decode()
    handler = type("Handler", (_BasicAuthHandler,), {"expected": f"Basic {token}"})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://reader:{password}@127.0.0.1:{server.server_port}/catalog.csv", password
    server.shutdown()


def _hits(secrets: dict[str, str], files: dict[str, bytes]) -> list[str]:
    """``secret name -> file`` for every planted secret found in any file."""
    return [
        f"{name} in {where}"
        for where, data in files.items()
        for name, secret in secrets.items()
        if secret.encode() in data
    ]


def _folder_files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _bucket_files(bucket: str, endpoint: str) -> dict[str, bytes]:
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    return {f"s3://{key}": fs.cat_file(key) for key in fs.find(bucket)}


def _prefect_parameters(home: Path) -> dict[str, list[dict]]:
    """Flow-run parameters as Prefect's database holds them, by flow name."""
    db = sqlite3.connect(home / "prefect" / "prefect.db")
    try:
        rows = db.execute(
            "SELECT flow.name, flow_run.parameters FROM flow_run JOIN flow ON flow.id = flow_run.flow_id"
        ).fetchall()
    finally:
        db.close()
    out: dict[str, list[dict]] = {}
    for name, params in rows:
        out.setdefault(name, []).append(json.loads(params))
    return out


def _mlflow_params(db_path: Path, key: str) -> list[str]:
    db = sqlite3.connect(db_path)
    try:
        return [v for (v,) in db.execute("SELECT value FROM params WHERE key = ?", (key,))]
    finally:
        db.close()


def test_planted_secrets_never_leak(
    prefect_api, s3_server, s3_bucket, catalog_server, tmp_path, capfd, monkeypatch
):
    catalog_url, url_password = catalog_server
    secrets = {
        "storage key": f"AKIA{uuid.uuid4().hex[:16].upper()}",
        "storage secret": f"sec-{uuid.uuid4().hex}",
        "url password": url_password,
        "session token": f"sess-{uuid.uuid4().hex}",
    }
    # A token in the environment, inherited by the Dask workers and the CLI process.
    monkeypatch.setenv("AWS_SESSION_TOKEN", secrets["session token"])
    options = {"key": secrets["storage key"], "secret": secrets["storage secret"]}
    tracking_db = tmp_path / "mlflow" / "mlflow.db"
    tracking = {"experiment": "tests-secrets", "mlflow_tracking_uri": f"sqlite:///{tracking_db}"}
    gate = {"min_pass_rate": 0.0, "contract": "warn", "max_privacy_flags": None}
    validation = {"validators": [{"name": "quality"}], "gate": gate, "n_boot": 200}

    # 1. Catalog run through the Python API with a mapping config (the hand-off path).
    out = f"s3://{s3_bucket}/out"
    cfg = small_config(
        Path(catalog_url),  # replaced below: small_config takes a local path
        out,
        compute={"n_workers": 1},
        tracking=tracking,
        validation=validation,
    )
    cfg["catalog"] = {"path": catalog_url, "format": "csv"}
    cfg["output"] = {"url": out, "storage_options": options}
    manifest = run_catalog(cfg)
    assert manifest["metrics"]["items_ok"] == 6  # the real password read the catalog
    assert len(read_items(out, **options)) == 6

    # 2. Validate run through the CLI with a YAML config (the config-path path).
    config_dir = tmp_path / "inputs"
    config_dir.mkdir()
    val_cfg = config_dir / "validate.yaml"
    val_cfg.write_text(
        yaml.safe_dump(
            {
                "name": "secrets-validate",
                "validation": validation,
                "sharding": {"items_per_shard": 4},
                "compute": {"n_workers": 1, "retries": 1, "retry_delay_s": 0.5},
                "tracking": tracking,
                "input_storage_options": options,
                "output_storage_options": options,
            }
        )
    )
    cli = Path(sys.executable).with_name("audio-synth")
    proc = subprocess.run(
        [str(cli), "validate", out, "--output", f"s3://{s3_bucket}/val", "--config", str(val_cfg)],
        cwd=REPO,
        env={**os.environ},
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]

    # Logs queued for the API reach Prefect's database before it is searched.
    from prefect._internal.concurrency.services import QueueService

    QueueService.drain_all(timeout=30)
    time.sleep(2)
    captured = capfd.readouterr()
    home = Path(os.environ["AUDIO_SYNTH_HOME"])
    files = {
        **_bucket_files(s3_bucket, s3_server),
        **_folder_files(tmp_path / "mlflow"),
        **_folder_files(home),
        "CLI stdout+stderr": proc.stdout + proc.stderr,
        "API run stdout+stderr": (captured.out + captured.err).encode(),
    }
    assert any(k.endswith("prefect.db") for k in files) and any("mlartifacts" in k for k in files)
    assert any(k.endswith("manifest.json") for k in files) and len(files) > 20
    # The search works: it finds every secret in the file that does hold them.
    control = _hits(secrets, _folder_files(config_dir) | {"cfg": json.dumps(cfg).encode()})
    assert {hit.split(" in ")[0] for hit in control} == {
        "storage key",
        "storage secret",
        "url password",
    }
    assert _hits(secrets, files) == []

    # Redacted, not removed: key names stay with *** as their values.
    store_manifest = manifest["config"]["output"]["storage_options"]
    assert store_manifest == {"key": REDACTED, "secret": REDACTED}
    assert manifest["config"]["catalog"]["path"].startswith(f"http://reader:{REDACTED}@127.0.0.1:")
    assert _mlflow_params(tracking_db, "output.storage_options.key") == [REDACTED]
    assert _mlflow_params(tracking_db, "input_storage_options.secret") == [REDACTED]
    artifacts = [json.loads(v) for k, v in files.items() if k.endswith("config.json")]
    catalog_artifacts = [a for a in artifacts if isinstance(a.get("output"), dict)]
    assert catalog_artifacts[0]["output"]["storage_options"] == {
        "key": REDACTED,
        "secret": REDACTED,
    }
    validate_artifacts = [a for a in artifacts if "input_storage_options" in a]
    assert validate_artifacts[0]["input_storage_options"] == {"key": REDACTED, "secret": REDACTED}
    params = _prefect_parameters(home)
    catalog_runs = [p for p in params["catalog-generation"] if isinstance(p["config"], dict)]
    assert any(
        (p["config"].get("output") or {}).get("storage_options")
        == {"key": REDACTED, "secret": REDACTED}
        for p in catalog_runs
    )
    sealed = [p for p in params["generate-shards"] if isinstance(p.get("sealed_store"), dict)]
    assert any(p["sealed_store"]["storage_options"].get("key") == REDACTED for p in sealed)
    assert any(p["config"] == str(val_cfg) for p in params["validate-dataset"])
