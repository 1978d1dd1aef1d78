from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.vocoder import HiFiGAN, InverseSTFT, VocoderConfig, harmonic_rotation

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


def test_harmonic_phase_makes_a_periodic_wave() -> None:
    # Unit magnitudes on the harmonics of 150 Hz with the harmonic phase: the inverse STFT gives a
    # wave with period 22050 / 150 = 147 samples; a constant phase gives one that repeats per hop.
    rate, n_fft, hop, frames = 22050, 1024, 256, 120
    f0 = torch.full((1, frames), 150.0)
    freqs = torch.arange(n_fft // 2 + 1).view(1, -1, 1) * rate / n_fft
    nearest = torch.round(freqs / 150.0).clamp(min=1) * 150.0
    magnitude = torch.exp(-((freqs - nearest) ** 2) / (2 * 15.0**2)) * (freqs < 4000)
    magnitude = magnitude.expand(1, -1, frames)
    istft = InverseSTFT(n_fft, hop)

    def period(real: torch.Tensor, imag: torch.Tensor) -> int:
        wave = istft(magnitude * real, magnitude * imag)[0, 4096:-4096]
        x = wave.numpy() - wave.numpy().mean()
        ac = np.correlate(x, x, "full")[len(x) - 1 :]
        return int(np.argmax(ac[100:400]) + 100)

    voiced = torch.ones(1, frames)
    assert period(*harmonic_rotation(f0, voiced, n_fft, hop, rate, max_harmonic=100)) == 147
    assert period(torch.ones_like(magnitude), torch.zeros_like(magnitude)) in (128, 256, 384)
    # Unvoiced frames hold the phase still; above max_harmonic the phasor is 1.
    real, imag = harmonic_rotation(f0, torch.zeros(1, frames), n_fft, hop, rate, 100)
    assert torch.equal(real[..., 0], real[..., -1]) and torch.equal(imag[..., 0], imag[..., -1])
    real, imag = harmonic_rotation(f0, voiced, n_fft, hop, rate, max_harmonic=6)
    high = freqs[0, :, 0] > 7 * 150.0
    assert torch.all(real[0, high] == 1.0) and torch.all(imag[0, high] == 0.0)
    # Continuous in F0: a hair's change of F0 moves the phasors by about as little.
    nudged = harmonic_rotation(f0 * (1 + 1e-6), voiced, n_fft, hop, rate, 6)
    assert (nudged[0] - real).abs().max() < 1e-2


def test_tiny_vocoder_predicts_f0_and_follows_a_given_one() -> None:
    torch.manual_seed(0)
    model = HiFiGAN(VocoderConfig.sized("tiny", **TINY_VOCODER)).eval()
    mel = torch.randn(1, 80, 30) - 5.0
    with torch.no_grad():
        out = model.synthesize(mel)
        forced = model.synthesize(mel, torch.full((1, 30), 120.0))
        again = model.synthesize(mel, torch.full((1, 30), 120.0))
    assert out.log_f0.shape == out.voicing_logit.shape == out.aux_log_f0.shape == (1, 30)
    assert torch.equal(model(mel), out.audio)
    # Teacher forcing replaces the branch's F0 in the phase, and only there.
    assert not torch.allclose(forced.audio, out.audio, atol=1e-4)
    assert torch.equal(forced.audio, again.audio) and torch.equal(forced.log_f0, out.log_f0)


def test_config_checks_the_upsampling_product() -> None:
    with pytest.raises(ConfigError):
        VocoderConfig(upsample_rates=[8, 4], upsample_kernels=[16, 8])
    with pytest.raises(ConfigError):
        VocoderConfig.from_dict({"width": 3})
    with pytest.raises(ConfigError, match="harmonic_phase"):
        VocoderConfig.sized("small", harmonic_phase=True)
