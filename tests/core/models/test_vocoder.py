from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.features import log_mel
from audio_synth_core.models.metrics import log_mel_l1
from audio_synth_core.models.training import VocoderHParams, train_vocoder
from audio_synth_core.models.vocoder import HiFiGAN, InverseSTFT, VocoderConfig

from .conftest import TINY_VOCODER


def test_inverse_stft_reconstructs_a_signal() -> None:
    x = torch.randn(2, 400, generator=torch.Generator().manual_seed(0))
    spec = torch.stft(
        F.pad(x, (6, 6)), 16, 4, window=torch.hann_window(16), center=False, return_complex=True
    )
    y = InverseSTFT(16, 4)(spec.real, spec.imag)
    assert torch.allclose(y, x, atol=1e-5)


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_generator_output_length(size: str) -> None:
    model = HiFiGAN(VocoderConfig.sized(size)).eval()
    with torch.no_grad():
        audio = model(torch.randn(2, 80, 7))
    assert audio.shape == (2, 7 * 256)
    assert audio.abs().max() <= 1.0


def test_config_checks_the_upsampling_product() -> None:
    with pytest.raises(ConfigError):
        VocoderConfig(upsample_rates=[8, 4], upsample_kernels=[16, 8])
    with pytest.raises(ConfigError):
        VocoderConfig.from_dict({"width": 3})


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
    # Per-batch losses are too noisy over 12 steps: judge copy synthesis of a whole clip.
    with torch.no_grad():
        before = log_mel_l1(audio, untrained(mel)[0].numpy())
        after = log_mel_l1(audio, result.model(mel)[0].numpy())
    assert after < before
