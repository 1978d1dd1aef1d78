"""``train_acoustic``: every decoder learns four utterances in a few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_synth_core.models.acoustic import DECODERS
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.training.acoustic import AcousticHParams, train_acoustic

from ..conftest import TINY_ACOUSTIC


@pytest.mark.parametrize("decoder", DECODERS)
def test_each_decoder_overfits_four_utterances(corpus, decoder: str) -> None:
    log: list[dict[str, float]] = []
    hp = AcousticHParams(
        decoder=decoder,
        steps=16,
        batch_size=4,
        warmup_steps=2,
        learning_rate=3e-3,
        log_every=1,
        sample_every=16,
        model_overrides=TINY_ACOUSTIC,
    )
    samples: list[tuple[int, np.ndarray, int]] = []
    result = train_acoustic(
        corpus,
        hp,
        torch.Generator().manual_seed(0),
        on_log=lambda step, m: log.append(m),
        on_sample=lambda step, audio, rate: samples.append((step, audio, rate)),
        frontend=Frontend("espeak", "en-us"),
        device="cpu",
    )
    assert result.step == 16 and len(log) == 16
    first = np.mean([m["loss"] for m in log[:3]])
    last = np.mean([m["loss"] for m in log[-3:]])
    assert last < 0.8 * first
    key = {"deterministic": "mel_l1", "vae": "mel_l1", "diffusion": "x0_mse"}[decoder]
    assert np.mean([m[key] for m in log[-3:]]) < np.mean([m[key] for m in log[:3]])
    assert result.metrics["utterances"] == 4
    ((step, audio, rate),) = samples
    assert step == 16 and rate == 22050 and audio.dtype == np.float32 and len(audio) % 256 == 0
