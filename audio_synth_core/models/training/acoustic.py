"""Training the acoustic model: ``train_acoustic`` and its hyperparameters (``AcousticHParams``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.acoustic import AcousticConfig, AcousticModel
from audio_synth_core.models.features import GriffinLimVocoder, MelConfig
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.training.checkpoints import CheckpointStore, rng_state, set_rng_state
from audio_synth_core.models.training.data import (
    DataOrder,
    Example,
    Utterance,
    acoustic_batch,
    prepare_acoustic,
)
from audio_synth_core.models.training.loop import (
    LogHook,
    MetricWindow,
    SampleHook,
    check_positive,
    default_device,
    fork_devices,
    warmup_cosine,
)


@dataclass(frozen=True)
class AcousticHParams:
    """Everything that decides an acoustic training run; JSON-serializable."""

    decoder: str = "deterministic"
    size: str = "tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    grad_clip: float = 1.0
    max_frames: int = 1200  # longer utterances are left out (memory, MAS time)
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    sample_every: int = 0  # 0: never call on_sample

    def __post_init__(self) -> None:
        check_positive(
            self, "steps", "batch_size", "checkpoint_every", "log_every", "keep_checkpoints"
        )


@dataclass
class AcousticTrainResult:
    model: AcousticModel
    frontend: Frontend
    mel_config: MelConfig
    step: int
    metrics: dict[str, float]
    train_seconds: float


def train_acoustic(
    dataset: Iterable[Example],
    hparams: AcousticHParams | None = None,
    generator: torch.Generator | None = None,
    checkpoint_url: str | None = None,
    on_log: LogHook | None = None,
    on_sample: SampleHook | None = None,
    frontend: Frontend | None = None,
    mel_config: MelConfig | None = None,
    device: torch.device | str | None = None,
) -> AcousticTrainResult:
    """Train an ``AcousticModel`` on (text, audio, rate) examples.

    ``frontend`` defaults to espeak IPA for ``en-us``; without a vocabulary it is fitted on the
    dataset's texts (a resumed run checks that it gets the same vocabulary). The dataset is read
    once into memory as log-mels.
    """
    hp = hparams or AcousticHParams()
    mel_config = mel_config or MelConfig()
    device = torch.device(device) if device is not None else default_device()
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    examples = list(dataset)
    if not examples:
        raise ConfigError("train_acoustic needs at least one example")
    frontend = frontend or Frontend()
    if frontend.vocabulary is None:
        frontend = frontend.fit(text for text, _, _ in examples)
    data, dropped = prepare_acoustic(examples, frontend, mel_config, hp.max_frames)
    if not data:
        raise ConfigError("no usable utterances (each needs at least one frame per symbol)")
    store = CheckpointStore(checkpoint_url, hp.keep_checkpoints) if checkpoint_url else None

    with torch.random.fork_rng(devices=fork_devices(device)):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        config = AcousticConfig.sized(
            hp.size, len(frontend.vocabulary), decoder=hp.decoder, **hp.model_overrides
        )
        config = config.with_(n_mels=mel_config.n_mels)
        model = AcousticModel(config).to(device)
        all_frames = torch.cat([u.mel for u in data], dim=1)
        model.set_normalization(all_frames.mean(1).to(device), all_frames.std(1).to(device))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=hp.learning_rate, betas=(0.9, 0.98), weight_decay=0.0
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(hp.warmup_steps, hp.steps)
        )
        noise = torch.Generator(device).manual_seed(
            int(torch.randint(0, 2**62, (1,), generator=generator))
        )
        order = DataOrder(len(data), generator)
        step = 0
        state = store.load_latest(device) if store else None
        if state is not None:
            if state["frontend"] != frontend.to_dict():
                raise ConfigError("the checkpoint's vocabulary differs from this dataset's")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            order.restore(state["order"])
            generator.set_state(state["generator"])
            noise.set_state(state["noise"])
            set_rng_state(state["rng"], device)
            step = state["step"]
        # A run resumed at its final step still reports the metrics it finished with.
        window, last = MetricWindow(), dict(state.get("metrics", {})) if state else {}
        floor = mel_config.log_floor
        started = time.perf_counter()
        while step < hp.steps:
            model.train()
            batch = acoustic_batch([data[i] for i in order.take(hp.batch_size)], floor, device)
            losses = model.losses(*batch, generator=noise)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            window.add({**{k: v.detach() for k, v in losses.items()}, "grad_norm": grad_norm})
            # Metrics first (they go into the checkpoint), the hook after the checkpoint: a hook
            # that stops the run at step k leaves a checkpoint of step k behind.
            logged = step % hp.log_every == 0 or step == hp.steps
            if logged:
                last = {**window.flush(), "lr": scheduler.get_last_lr()[0]}
            if store and (step % hp.checkpoint_every == 0 or step == hp.steps):
                store.save(
                    step,
                    {
                        "kind": "acoustic",
                        "step": step,
                        "config": config.to_dict(),
                        "frontend": frontend.to_dict(),
                        "mel_config": mel_config.to_dict(),
                        "hparams": asdict(hp),
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "order": order.state(),
                        "generator": generator.get_state(),
                        "noise": noise.get_state(),
                        "rng": rng_state(device),
                        "metrics": last,
                    },
                )
            if on_log and logged:
                on_log(step, last)
            if on_sample and hp.sample_every and step % hp.sample_every == 0:
                on_sample(
                    step, _acoustic_sample(model, data[0], mel_config), mel_config.sample_rate_hz
                )
        model.eval()
    metrics = {**last, "dropped_utterances": float(dropped), "utterances": float(len(data))}
    return AcousticTrainResult(
        model, frontend, mel_config, step, metrics, time.perf_counter() - started
    )


def _acoustic_sample(model: AcousticModel, utt: Utterance, mel_config: MelConfig) -> np.ndarray:
    """Griffin-Lim audio of the model's prediction for one training utterance (a progress probe)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        ids = utt.ids.unsqueeze(0).to(device)
        mel, _ = model.infer(
            ids, torch.tensor([len(utt.ids)], device=device), torch.Generator(device).manual_seed(0)
        )
        audio = GriffinLimVocoder(mel_config).to(device)(mel)[0]
    model.train(was_training)
    return audio.cpu().numpy()
