"""MLflow tracking: one MLflow run per flow run. Called from flows (the edge), never from workers."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audio_synth_core.config.secrets import redact, scrub
from audio_synth_core.models.registry_uri import use_registry
from audio_synth_core.store.storage import Store


def tracking_uri(configured: str | None, store: Store) -> str:
    """MLFLOW_TRACKING_URI wins, then the config, then SQLite beside local outputs."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if configured:
        return configured
    folder = (
        Path(store.url)
        if store.is_local
        else Path(os.environ.get("AUDIO_SYNTH_HOME", ".audio-synth"))
    )
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder.absolute() / 'mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite store go beside the database, not into ./mlruns of the cwd."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").absolute().as_uri()
    return None


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    """Nested config -> ``a.b.c`` params (MLflow params are flat strings)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list | dict) else value
    return out


_OPENING: dict[str, threading.Thread] = {}


def open_in_background(uri: str) -> None:
    """Import MLflow and open the store at ``uri`` on a thread (a new SQLite store is created and
    migrated: 2-3 s in all) while the driver waits for its shards; ``start_run`` joins it. MLflow
    caches the store per URI, so the run then finds it open. Errors are left to ``start_run``."""
    if uri not in _OPENING:
        _OPENING[uri] = threading.Thread(target=_open, args=(uri,), name="mlflow-open", daemon=True)
        _OPENING[uri].start()


def _open(uri: str) -> None:
    try:
        from mlflow.tracking import MlflowClient

        new = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
        if new is not None and not new.exists():
            # Made under another name and linked into place once migrated: a run killed meanwhile
            # (mid-shards) leaves no half-migrated database for the next run to trip over.
            tmp = new.with_name(f"{new.name}.tmp-{uuid.uuid4().hex}")
            try:
                MlflowClient(f"sqlite:///{tmp}").search_experiments(max_results=1)
                with contextlib.suppress(FileExistsError):  # never over one made meanwhile
                    os.link(tmp, new)
            finally:
                tmp.unlink(missing_ok=True)
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception:  # start_run meets the same error in the flow's thread
        pass


def start_run(uri: str, experiment: str, run_name: str, tags: Mapping[str, str] | None = None):
    """An active MLflow run in ``experiment`` (created with a sane artifact root if new); tag
    values carry no credentials (an input URL's password is redacted)."""
    opening = _OPENING.pop(uri, None)
    if opening is not None:
        opening.join()
    import mlflow

    use_registry(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=_artifact_root(uri))
    mlflow.set_experiment(experiment)
    return mlflow.start_run(run_name=run_name, tags=scrub(dict(tags or {})))


def log_config(config: Mapping[str, Any], name: str = "config.json") -> None:
    """The config as flat params and a JSON artifact, credentials redacted (key names kept, values
    ``***``): MLflow's database and artifacts are read by many more people than the config."""
    import mlflow

    config = redact(config)
    params = flatten("", config, {})
    # MLflow caps a param value at 6000 characters; the full config is also an artifact.
    mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
    mlflow.log_dict(dict(config), name)


def log_metrics(metrics: Mapping[str, float | int | None]) -> None:
    import mlflow

    clean = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
    mlflow.log_metrics(clean)


def log_files(files: Mapping[str, bytes], artifact_path: str) -> None:
    """Log in-memory files (sample audio, reports) as artifacts under ``artifact_path``."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            Path(tmp, name).write_bytes(data)
        mlflow.log_artifacts(tmp, artifact_path)
