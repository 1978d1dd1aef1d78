"""The train flow: corpus -> train on a (GPU) worker with checkpoints -> MLflow -> registry alias."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from audio_synth_core import audio
from audio_synth_core.config.models import ComputeConfig, TrainConfig, load_train_config
from audio_synth_core.config.secrets import redact
from audio_synth_core.models.corpus import corpus_texts
from audio_synth_core.models.registry import log_tts_model, set_alias
from audio_synth_core.models.tts import TTSModel
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.lease import output_lease
from audio_synth_core.store import ids, layout
from audio_synth_core.store.storage import Store
from flows import tracking
from flows.compute import dask_runner, effective_gpus, gpu_annotation
from flows.credentials import Sealed, restore, seal
from flows.prepare import open_store, resolve, with_compute
from tasks.train import train_task


@flow(name="train-on-cluster")
def train_on_cluster(sealed_cfg: Sealed, sealed_store: Sealed, train_id: str, gpus: int) -> dict:
    # Sealed: Prefect stores only the redacted views of the config and the store.
    cfg: TrainConfig = sealed_cfg.value
    store: Store = sealed_store.value
    with gpu_annotation(gpus):
        future = train_task.with_options(retries=cfg.compute.retries).submit(cfg, store, train_id)
    return future.result()


def _load_model(store: Store, rel: str) -> TTSModel:
    with tempfile.TemporaryDirectory() as tmp:
        for name in store.list(rel):
            Path(tmp, name).write_bytes(store.read_bytes(f"{rel}/{name}"))
        return TTSModel.load(tmp)


def train_id_for(cfg: TrainConfig) -> str:
    """Same data + model + hyperparameters -> same id -> same checkpoints: a run resumes."""
    recipe = cfg.model_dump(mode="json", include={"corpus", "model", "acoustic", "vocoder"})
    return ids.run_id(cfg.name, ids.digest(recipe))


def _log_history(history: list[dict[str, Any]]) -> None:
    """The worker's loss curves, as MLflow metrics with their steps (``<part>_<metric>``)."""
    import mlflow

    for entry in history:
        named = {f"{entry['part']}_{k}": float(v) for k, v in entry["metrics"].items()}
        mlflow.log_metrics(named, step=int(entry["step"]))


@flow(name="train-generator")
def train_flow(
    config: str | dict[str, Any], output: str, dask_address: str | None = None
) -> dict[str, Any]:
    """Train a generator model, log it to MLflow, register it and set its alias."""
    logger = get_run_logger()
    # Parameters handed over by flows.api are redacted copies: restore the real ones in-process.
    cfg = resolve(restore(config), TrainConfig, load_train_config)
    output = restore(output)
    compute = with_compute(cfg.compute, dask_address, None)
    compute = compute.model_copy(update={"n_workers": compute.n_workers or 1})
    store = open_store(output)
    with output_lease(store, "train", on_wait=logger.warning):
        return _train_run(cfg, compute, store, logger)


def _train_run(
    cfg: TrainConfig, compute: ComputeConfig, store: Store, logger: Any
) -> dict[str, Any]:
    """The run body, under the output's lease: one run per output at a time (pipeline/lease.py)."""
    train_id = train_id_for(cfg)
    done = runs.completed(store, train_id)
    if done is not None:
        logger.warning("training %s is already complete under %s", train_id, store.url)
        return done
    uri = tracking.tracking_uri(cfg.tracking.mlflow_tracking_uri, store)
    with tracking.start_run(
        uri, cfg.tracking.experiment, train_id, {"audio_synth.train_id": train_id}
    ) as run:
        tracking.log_config(cfg.model_dump(mode="json"))
        gpus = effective_gpus(compute, compute.gpu_per_task)
        summary = train_on_cluster.with_options(task_runner=dask_runner(compute, gpus))(
            seal(cfg.model_copy(update={"compute": compute})), seal(store), train_id, gpus
        )
        _log_history(summary.pop("history"))
        tts = _load_model(store, layout.model_dir(train_id))
        metrics = {k: v for k, v in summary.items() if isinstance(v, int | float)}
        tracking.log_metrics(metrics)
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
    result = {
        "train_id": train_id,
        "model_name": cfg.registry.model_name,
        "version": version,
        "aliases": aliases,
        "model_uri": f"models:/{cfg.registry.model_name}/{version}",
        "mlflow_run_id": mlflow_run_id,
        "metrics": metrics,
        "summary": summary,
    }
    return runs.commit(store, "train", train_id, result, redact(cfg.model_dump(mode="json")))


def _has_alias(name: str, alias: str) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient().get_model_version_by_alias(name, alias)
        return True
    except MlflowException:
        return False
