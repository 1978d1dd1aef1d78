"""The training task: one generator model trained on one worker (a GPU worker when asked)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.config.models import TrainConfig
from audio_synth_core.models.recipe import train_tts
from audio_synth_core.store.storage import Store


@task(name="train-generator", cache_policy=NO_CACHE, persist_result=False)
def train_task(
    cfg: TrainConfig, store: Store, train_id: str, tracking_uri: str, mlflow_run_id: str
) -> dict[str, Any]:
    """Train (resuming from checkpoints in the store), save the model under models/<train_id>."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)

    def on_log(part: str, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            client.log_metric(mlflow_run_id, f"{part}_{key}", float(value), step=step)
        # Progress on the terminal: worker output reaches the flow's console.
        shown = ", ".join(f"{k} {v:.3f}" for k, v in list(metrics.items())[:3])
        print(f"train {part} step {step}: {shown}", flush=True)

    tts, summary = train_tts(cfg, store.uri(f"checkpoints/{train_id}"), on_log)
    with tempfile.TemporaryDirectory() as tmp:
        tts.save(tmp)
        for path in sorted(
            Path(tmp).iterdir()
        ):  # config.json last: its presence marks completeness
            if path.name != "config.json":
                store.write_bytes(f"models/{train_id}/{path.name}", path.read_bytes())
        store.write_bytes(
            f"models/{train_id}/config.json", (Path(tmp) / "config.json").read_bytes()
        )
    return {**summary, "model_url": store.uri(f"models/{train_id}")}
