"""The train flow: corpus -> train on a (GPU) worker with checkpoints -> MLflow -> registry alias."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from audio_synth_core import audio
from audio_synth_core.config.models import TrainConfig, load_train_config
from audio_synth_core.models.corpus import corpus_texts
from audio_synth_core.models.registry import log_tts_model, set_alias
from audio_synth_core.models.tts import TTSModel
from audio_synth_core.store.storage import Store
from flows import tracking
from flows.compute import dask_runner, effective_gpus, gpu_annotation
from tasks.train import train_task


@flow(name="train-on-cluster")
def train_on_cluster(
    cfg: TrainConfig, store: Store, train_id: str, uri: str, run_id: str, gpus: int
) -> dict:
    with gpu_annotation(gpus):
        future = train_task.with_options(retries=cfg.compute.retries).submit(
            cfg, store, train_id, uri, run_id
        )
    return future.result()


def _load_model(store: Store, rel: str) -> TTSModel:
    with tempfile.TemporaryDirectory() as tmp:
        for name in store.list(rel):
            Path(tmp, name).write_bytes(store.read_bytes(f"{rel}/{name}"))
        return TTSModel.load(tmp)


def resolve_train_config(config: str | dict[str, Any] | TrainConfig) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        return load_train_config(None, config)
    return load_train_config(config)


@flow(name="train-generator")
def train_flow(
    config: str | dict[str, Any], output: str, dask_address: str | None = None
) -> dict[str, Any]:
    """Train a generator model, log it to MLflow, register it and set its alias."""
    logger = get_run_logger()
    cfg = resolve_train_config(config)
    if dask_address:
        cfg = cfg.model_copy(
            update={"compute": cfg.compute.model_copy(update={"dask_address": dask_address})}
        )
    store = Store(output)
    store.check_writable()
    # Same data + model + hyperparameters -> same id -> same checkpoints: an interrupted run resumes.
    recipe = cfg.model_dump(mode="json", include={"corpus", "model", "acoustic", "vocoder"})
    train_id = (
        f"{cfg.name}-{hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]}"
    )
    uri = tracking.tracking_uri(cfg.tracking.mlflow_tracking_uri, store)
    compute = cfg.compute.model_copy(update={"n_workers": cfg.compute.n_workers or 1})
    with tracking.start_run(
        uri, cfg.tracking.experiment, train_id, {"audio_synth.train_id": train_id}
    ) as run:
        tracking.log_config(cfg.model_dump(mode="json"))
        gpus = effective_gpus(compute, compute.gpu_per_task)
        summary = train_on_cluster.with_options(task_runner=dask_runner(compute, gpus))(
            cfg, store, train_id, uri, run.info.run_id, gpus
        )
        tts = _load_model(store, f"models/{train_id}")
        tracking.log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float)})
        prompts = corpus_texts(cfg.corpus)[:3] or ["Hello from audio synth."]
        clips = {
            f"sample-{i}.flac": audio.encode(c, tts.sample_rate_hz)
            for i, c in enumerate(tts.synthesize(prompts, seed=0))
        }
        tracking.log_files(clips, "samples")
        info = log_tts_model(tts, registered_model_name=cfg.registry.model_name)
        version = str(info.registered_model_version)
        aliases = []
        if cfg.registry.alias:
            set_alias(cfg.registry.model_name, cfg.registry.alias, version)
            aliases.append(cfg.registry.alias)
        if cfg.registry.champion_if_none and not _has_alias(cfg.registry.model_name, "champion"):
            set_alias(cfg.registry.model_name, "champion", version)
            aliases.append("champion")
        mlflow_run_id = run.info.run_id
    logger.warning(
        "registered %s version %s (aliases: %s)", cfg.registry.model_name, version, aliases
    )
    return {
        "train_id": train_id,
        "model_name": cfg.registry.model_name,
        "version": version,
        "aliases": aliases,
        "model_uri": f"models:/{cfg.registry.model_name}/{version}",
        "mlflow_run_id": mlflow_run_id,
        "summary": summary,
    }


def _has_alias(name: str, alias: str) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient().get_model_version_by_alias(name, alias)
        return True
    except MlflowException:
        return False
