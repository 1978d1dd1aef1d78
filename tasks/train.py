"""The training task: one generator model trained on one worker (a GPU worker when asked).

The worker writes checkpoints and the model to storage and returns a small summary with the loss
history; the flow logs that history to MLflow (workers never talk to the tracking server)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.config.models import TrainConfig
from audio_synth_core.models.recipe import train_tts
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from tasks.retry import retry_on_infrastructure


@task(
    name="train-generator",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=retry_on_infrastructure,
)
def train_task(cfg: TrainConfig, store: Store, train_id: str) -> dict[str, Any]:
    """Train (resuming from checkpoints in the store), save the model under models/<train_id>."""
    history: list[dict[str, Any]] = []

    def on_log(part: str, step: int, metrics: dict[str, float]) -> None:
        history.append({"part": part, "step": step, "metrics": dict(metrics)})
        # Progress on the terminal: worker output reaches the flow's console.
        shown = ", ".join(f"{k} {v:.3f}" for k, v in list(metrics.items())[:3])
        print(f"train {part} step {step}: {shown}", flush=True)

    tts, summary = train_tts(cfg, store.uri(layout.checkpoints_dir(train_id)), on_log)
    folder = layout.model_dir(train_id)
    with tempfile.TemporaryDirectory() as tmp:
        tts.save(tmp)
        # config.json last: its presence marks a complete model.
        for path in sorted(Path(tmp).iterdir(), key=lambda p: p.name == "config.json"):
            store.write_bytes(f"{folder}/{path.name}", path.read_bytes())
    return {**summary, "model_url": store.uri(folder), "history": history}
