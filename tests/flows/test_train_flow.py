"""train -> register -> generate via alias, against a real MLflow store; resume from checkpoints."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from flows.api import read_items, run_catalog, train_model
from tests.conftest import show, small_config, write_catalog
from tests.core.models.conftest import TINY_ACOUSTIC, TINY_VOCODER

pytestmark = pytest.mark.slow

TEXTS = [
    "Call me back.",
    "The red door.",
    "Seven green apples.",
    "Water the plants.",
    "Open the box.",
]


def train_config(steps: int = 30) -> dict:
    return {
        "name": "tiny",
        "corpus": {"texts": TEXTS, "voice": "en-us"},
        "model": {"decoder": "deterministic", "vocoder": "hifigan"},
        "acoustic": {
            "steps": steps,
            "batch_size": 4,
            "checkpoint_every": 10,
            "log_every": 5,
            "model_overrides": TINY_ACOUSTIC,
        },
        "vocoder": {
            "steps": 6,
            "batch_size": 2,
            "checkpoint_every": 3,
            "log_every": 2,
            "model_overrides": TINY_VOCODER,
        },
        "registry": {"model_name": "tiny-tts", "alias": "challenger"},
        "compute": {"n_workers": 1, "retries": 0},
        "tracking": {"experiment": "train-tests"},
    }


def test_train_register_generate_and_resume(prefect_api, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    out = str(tmp_path / "models")
    first = train_model(train_config(), out)
    assert first["version"] == "1" and set(first["aliases"]) == {"challenger", "champion"}
    client = MlflowClient(uri)
    assert str(client.get_model_version_by_alias("tiny-tts", "champion").version) == "1"
    run = client.get_run(first["mlflow_run_id"])
    history = client.get_metric_history(run.info.run_id, "acoustic_loss")
    assert len(history) >= 3 and max(m.step for m in history) == 30  # the worker's curves
    assert run.data.metrics["corpus_utterances"] == len(TEXTS)
    assert any(a.path.endswith(".flac") for a in client.list_artifacts(run.info.run_id, "samples"))
    shown = show(out)
    assert f"train run {first['train_id']}" in shown and "models:/tiny-tts/1" in shown

    # A complete training run is returned as it is: no second training, no new version.
    again = train_model(train_config(), out)
    assert again["version"] == "1" and again["completed_at"] == first["completed_at"]
    assert [int(v.version) for v in client.search_model_versions("name='tiny-tts'")] == [1]

    # A run that died after its checkpoints (no model, no manifest) resumes at its last step.
    store = Store(out)
    store.fs.rm(store.path(layout.manifest(first["train_id"])))
    store.fs.rm(store.path(layout.model_dir(first["train_id"])), recursive=True)
    second = train_model(train_config(), out)
    assert second["train_id"] == first["train_id"] and second["summary"]["acoustic_steps"] == 30
    assert second["summary"]["acoustic_train_s"] < first["summary"]["acoustic_train_s"]
    assert str(client.get_model_version_by_alias("tiny-tts", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("tiny-tts", "challenger").version) == "2"

    # Generate a catalog with the champion through the same pipeline as espeak.
    rows = [{"id": f"n{i}", "text": t} for i, t in enumerate(TEXTS)]
    cfg = small_config(
        write_catalog(tmp_path / "c.csv", rows),
        str(tmp_path / "out"),
        generator={
            "name": "neural",
            "params": {"model_uri": "models:/tiny-tts@champion", "device": "cpu"},
        },
        voices={"default": "default", "by_language": {}},
        validation={"enabled": False},
    )
    manifest = run_catalog(cfg)
    items = read_items(str(tmp_path / "out"))
    assert (items["status"] == "ok").all() and (items["generator_version"] == "tiny-tts/1").all()
    assert (items["sample_rate_hz"] == 22050).all() and (items["num_samples"] > 0).all()
    assert manifest["metrics"]["items_generated"] == len(TEXTS)
    assert np.isfinite(items["rms_dbfs"]).all()
