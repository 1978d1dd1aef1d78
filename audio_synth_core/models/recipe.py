"""One training recipe from a TrainConfig: corpus -> acoustic model (+ vocoder) -> TTSModel."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from audio_synth_core.config.models import TrainConfig
from audio_synth_core.errors import ConfigError
from audio_synth_core.models.corpus import build_corpus
from audio_synth_core.models.training.acoustic import AcousticHParams, train_acoustic
from audio_synth_core.models.training.vocoder import VocoderHParams, train_vocoder
from audio_synth_core.models.tts import TTSModel


def _hparams(cls: type, values: dict[str, Any], section: str, **fixed: Any):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown {section} hyperparameter(s): {', '.join(sorted(unknown))}")
    return cls(**{**values, **fixed})


def train_tts(
    cfg: TrainConfig,
    checkpoint_url: str | None,
    on_log: Callable[[str, int, dict[str, float]], None] | None = None,
    device: str | None = None,
) -> tuple[TTSModel, dict[str, Any]]:
    """Train the configured model; checkpoints under ``checkpoint_url`` make it resumable."""
    acoustic_hp = _hparams(
        AcousticHParams, cfg.acoustic, "acoustic", decoder=cfg.model.decoder, size=cfg.model.size
    )
    vocoder_hp = _hparams(VocoderHParams, cfg.vocoder, "vocoder", size=cfg.model.size)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    corpus = build_corpus(cfg.corpus)
    generator = torch.Generator().manual_seed(cfg.model.seed)
    log = (lambda part: lambda step, m: on_log(part, step, m)) if on_log else (lambda part: None)
    acoustic = train_acoustic(
        corpus,
        acoustic_hp,
        generator,
        checkpoint_url=f"{checkpoint_url}/acoustic" if checkpoint_url else None,
        on_log=log("acoustic"),
        device=device,
    )
    summary: dict[str, Any] = {
        "corpus_utterances": len(corpus),
        "corpus_audio_s": sum(len(a) / r for _, a, r in corpus),
        "acoustic_steps": acoustic.step,
        "acoustic_train_s": acoustic.train_seconds,
        **{f"acoustic_{k}": v for k, v in acoustic.metrics.items()},
    }
    vocoder = None
    if cfg.model.vocoder == "hifigan":
        result = train_vocoder(
            corpus,
            vocoder_hp,
            torch.Generator().manual_seed(cfg.model.seed + 1),
            checkpoint_url=f"{checkpoint_url}/vocoder" if checkpoint_url else None,
            on_log=log("vocoder"),
            mel_config=acoustic.mel_config,
            device=device,
        )
        vocoder = result.model
        summary.update(
            vocoder_steps=result.step,
            vocoder_train_s=result.train_seconds,
            **{f"vocoder_{k}": v for k, v in result.metrics.items()},
        )
    tts = TTSModel(
        acoustic.frontend, acoustic.model, acoustic.mel_config, vocoder, cfg.model.vocoder
    )
    return tts.to("cpu"), summary
