"""``train_vocoder``: spectral losses first, then the GAN losses; copy synthesis improves."""

from __future__ import annotations

import numpy as np
import torch

from audio_synth_core.models.features import log_mel
from audio_synth_core.models.metrics import log_mel_l1
from audio_synth_core.models.training.vocoder import VocoderHParams, train_vocoder
from audio_synth_core.models.vocoder import HiFiGAN, VocoderConfig

from ..conftest import TINY_VOCODER


def test_vocoder_trains_with_adversarial_losses(corpus) -> None:
    _, audio, _ = corpus[0]
    audio = audio[: len(audio) // 256 * 256]
    mel = log_mel(audio).unsqueeze(0)
    torch.manual_seed(0)
    untrained = HiFiGAN(VocoderConfig.sized("tiny", **TINY_VOCODER)).eval()
    log: list[dict[str, float]] = []
    hp = VocoderHParams(
        steps=12,
        batch_size=2,
        segment_frames=8,
        adversarial_start_step=4,
        log_every=1,
        model_overrides=TINY_VOCODER,
    )
    result = train_vocoder(
        corpus,
        hp,
        torch.Generator().manual_seed(0),
        on_log=lambda s, m: log.append(m),
        device="cpu",
    )
    assert result.step == 12
    assert "loss_d" not in log[0] and "loss_d" in log[-1] and "feature_matching" in log[-1]
    assert all(np.isfinite(m["loss_g"]) for m in log)
    # The tiny size's F0 head learns from pYIN targets (voicing cross-entropy + log-F0 L1).
    assert all(np.isfinite(m["f0"]) and m["f0"] > 0 for m in log)
    # Per-batch losses are too noisy over 12 steps: judge copy synthesis of a whole clip.
    with torch.no_grad():
        before = log_mel_l1(audio, untrained(mel)[0].numpy())
        after = log_mel_l1(audio, result.model(mel)[0].numpy())
    assert after < before
