"""A small HiFi-GAN-style GAN vocoder: log-mel -> waveform.

Generator (Kong et al. 2020): a 7-tap input convolution, transposed-convolution upsampling stages,
each followed by a multi-receptive-field fusion (MRF: the mean of residual blocks with different
kernel sizes and dilations), then a 7-tap output convolution and tanh. With ``head="istft"`` the last
upsampling stages are replaced by an inverse STFT of a predicted magnitude and phase (iSTFTNet,
Kaneko et al. 2022); the ``tiny`` size drops them all and predicts the STFT at the mel's own frame
rate (Vocos, Siuzdak 2023): far less work per sample, which is what makes it trainable on a CPU in
minutes. The tiny size also predicts F0 and voicing and turns each low bin's phase with its nearest
harmonic's (``harmonic_rotation``), the source half of a source-filter vocoder (as NSF, Wang et al.
2019, drives its filter with a sine at F0): it is trained on pYIN's F0 of the training audio. The
inverse STFT is a transposed convolution with a fixed inverse-DFT basis, so the whole forward pass
exports to ONNX.

Training adds the discriminators and GAN losses of ``discriminators`` to the spectral losses and
``f0_prediction_loss`` below.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torchaudio
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from audio_synth_core.errors import ConfigError

HEADS = ("waveform", "istft")
LRELU = 0.1

SIZES: dict[str, dict[str, Any]] = {
    # Frame-rate iSTFT head (as in Vocos, Siuzdak 2023): the MRF runs at the mel's frame rate and
    # predicts a 1024-point STFT at the mel's hop, whose magnitude starts from the inverse mel
    # filterbank. The single "upsampling" stage is a 1x1 convolution. On 2 CPU cores it learned far
    # faster than the iSTFTNet-style C4I (4x upsampling, n_fft 256, hop 64) it replaced: after
    # 4000 spectral-loss steps (64- vs 32-frame segments) copy-synthesis MCD 0.64 vs 1.03 dB,
    # log-mel L1 0.174 vs 0.272, STOI 0.941 vs 0.911, at the same cost per step.
    "tiny": {
        "head": "istft",
        "channels": 256,
        "upsample_rates": [1],
        "upsample_kernels": [1],
        "resblock_kernels": [3, 5, 7],
        "resblock_dilations": [[1, 2, 4], [1, 2, 4], [1, 2, 4]],
        "istft_n_fft": 1024,
        "istft_hop": 256,
        "magnitude_prior": True,
        "harmonic_phase": True,
        "disc_channels": 16,
    },
    # HiFi-GAN V2-sized waveform generator.
    "small": {
        "head": "waveform",
        "channels": 128,
        "upsample_rates": [8, 8, 2, 2],
        "upsample_kernels": [16, 16, 4, 4],
        "resblock_kernels": [3, 7, 11],
        "resblock_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "disc_channels": 32,
    },
    # HiFi-GAN V1.
    "base": {
        "head": "waveform",
        "channels": 512,
        "upsample_rates": [8, 8, 2, 2],
        "upsample_kernels": [16, 16, 4, 4],
        "resblock_kernels": [3, 7, 11],
        "resblock_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "disc_channels": 64,
    },
}


@dataclass(frozen=True)
class VocoderConfig:
    """Hyperparameters of ``HiFiGAN`` and its discriminators; JSON-serializable."""

    n_mels: int = 80
    hop_length: int = 256
    head: str = "istft"
    channels: int = 256
    upsample_rates: list[int] = field(default_factory=lambda: [1])
    upsample_kernels: list[int] = field(default_factory=lambda: [1])
    resblock_kernels: list[int] = field(default_factory=lambda: [3, 5, 7])
    resblock_dilations: list[list[int]] = field(
        default_factory=lambda: [[1, 2, 4], [1, 2, 4], [1, 2, 4]]
    )
    istft_n_fft: int = 1024
    istft_hop: int = 256
    # istft head: start the magnitude from the least-squares inverse of the mel filterbank (the
    # network learns a log-domain correction and the phase). Needs the mel analysis settings.
    magnitude_prior: bool = True
    # istft head (the tiny size turns it on): predict F0 and voicing from the mel and turn the
    # phase of every bin up to the ``harmonic_max``-th harmonic by its nearest harmonic's phase
    # (h * the integral of 2 pi F0), as a source-filter vocoder does; the network adds an offset.
    # A frame-rate network cannot make the steady phase advance of a low harmonic by itself.
    # Training needs F0 targets (pYIN, ``features.f0_frames``).
    harmonic_phase: bool = False
    f0_min_hz: float = 50.0
    f0_max_hz: float = 600.0
    harmonic_max: int = 6
    f0_channels: int = 128
    sample_rate_hz: int = 22050
    mel_n_fft: int = 1024
    f_min_hz: float = 0.0
    f_max_hz: float = 8000.0
    disc_channels: int = 16
    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    scales: int = 3

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ConfigError(f"unknown vocoder head {self.head!r}; expected one of {HEADS}")
        total = math.prod(self.upsample_rates) * (self.istft_hop if self.head == "istft" else 1)
        if total != self.hop_length:
            raise ConfigError(
                f"upsampling gives {total} samples per frame but hop_length is {self.hop_length}"
            )
        if len(self.upsample_rates) != len(self.upsample_kernels):
            raise ConfigError("upsample_rates and upsample_kernels must have the same length")
        if self.harmonic_phase and (self.head != "istft" or math.prod(self.upsample_rates) != 1):
            # F0 is predicted per mel frame, so the STFT must run at the mel's frame rate.
            raise ConfigError("harmonic_phase needs the istft head at the mel's frame rate")
        if self.channels >> len(self.upsample_rates) < 1:
            raise ConfigError("channels are halved per upsampling stage: too few channels")

    @classmethod
    def sized(cls, size: str, **overrides: Any) -> VocoderConfig:
        if size not in SIZES:
            raise ConfigError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        return cls.from_dict({**SIZES[size], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VocoderConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown VocoderConfig keys: {sorted(unknown)}")
        return cls(**data)

    def with_(self, **changes: Any) -> VocoderConfig:
        return replace(self, **changes)


def _wn(conv: nn.Module) -> nn.Module:
    """HiFi-GAN's N(0, 0.01) initialization, then weight normalization (init first: the
    parametrized ``weight`` is recomputed from its parts, so initializing it afterwards is lost)."""
    nn.init.normal_(conv.weight, 0.0, 0.01)
    return weight_norm(conv)


class ResBlock(nn.Module):
    """HiFi-GAN ResBlock1: pairs of (dilated conv, conv) with leaky ReLUs and residuals."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            _wn(nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            _wn(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2)) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            y = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU)), LRELU))
            x = x + y
        return x


class InverseSTFT(nn.Module):
    """Inverse STFT (Hann window, overlap-add) as a transposed convolution: exports to ONNX."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        bins = n_fft // 2 + 1
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64).unsqueeze(1)
        # irfft as a real basis: weights 1 for DC and Nyquist, 2 for the other bins.
        scale = torch.full((bins, 1), 2.0, dtype=torch.float64)
        scale[0] = scale[-1] = 1.0
        cos = scale * torch.cos(2 * math.pi * k * n / n_fft) / n_fft
        sin = -scale * torch.sin(2 * math.pi * k * n / n_fft) / n_fft
        basis = torch.cat([cos, sin], 0) * window  # [2 * bins, n_fft]
        self.register_buffer("basis", basis.float().unsqueeze(1))
        self.register_buffer("window_sq", (window**2).float().view(1, 1, -1))

    def forward(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        """``real, imag [B, bins, F]`` -> audio ``[B, F * hop]``."""
        spec = torch.cat([real, imag], 1)
        audio = F.conv_transpose1d(spec, self.basis, stride=self.hop)
        ones = torch.ones(1, 1, spec.shape[-1], device=spec.device, dtype=spec.dtype)
        envelope = F.conv_transpose1d(ones, self.window_sq, stride=self.hop)
        audio = audio / envelope.clamp(min=1e-6)
        trim = (self.n_fft - self.hop) // 2
        return audio[:, 0, trim : trim + spec.shape[-1] * self.hop]


@dataclass
class VocoderOutput:
    """Audio ``[B, T * hop]`` and, with ``harmonic_phase``, the F0 head's outputs ``[B, frames]``."""

    audio: torch.Tensor
    log_f0: torch.Tensor | None = None
    voicing_logit: torch.Tensor | None = None
    # The MRF's own (auxiliary) F0 prediction.
    aux_log_f0: torch.Tensor | None = None
    aux_voicing_logit: torch.Tensor | None = None


def harmonic_rotation(
    f0_hz: torch.Tensor,
    voicing: torch.Tensor,
    n_fft: int,
    hop: int,
    sample_rate_hz: float,
    max_harmonic: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-ish phasors ``(real, imag) [B, n_fft // 2 + 1, F]`` of each bin's nearest harmonic.

    ``f0_hz`` and ``voicing`` (0..1) are ``[B, F]``; the phase phi = integral of 2 pi F0 advances
    only while voiced. Harmonic h has phase h * phi at each frame's centre; ``(-1)^k`` is the
    linear phase of a centred window in a frame whose DFT starts at its first sample
    (``InverseSTFT``'s convention). Everything is continuous in F0 and voicing, so exported and
    quantized models (whose F0 differs by a hair) give nearly the same audio: between harmonics the
    phasor crossfades from one harmonic to the next, and above ``max_harmonic`` (where a 1 % F0
    error already turns the phase by ~1 rad per hop) it fades to 1, the plain phase reference.
    """
    rate = f0_hz * voicing
    step = math.pi * hop / sample_rate_hz * (rate[:, 1:] + rate[:, :-1])
    phi = torch.cat([torch.zeros_like(rate[:, :1]), torch.cumsum(step, dim=1)], dim=1)
    # Integer multiples of phi only matter modulo 2 pi: wrap before multiplying.
    phi = torch.remainder(phi, 2 * math.pi).unsqueeze(1)
    bins = torch.arange(n_fft // 2 + 1, device=f0_hz.device, dtype=f0_hz.dtype).view(1, -1, 1)
    ratio = bins * (sample_rate_hz / n_fft) / f0_hz.unsqueeze(1)
    below = torch.floor(ratio)
    w = torch.clamp(4.0 * (ratio - below - 0.5) + 0.5, 0.0, 1.0)
    p0, p1 = below * phi, (below + 1.0) * phi
    sign = 1.0 - 2.0 * torch.remainder(bins, 2.0)
    real = sign * ((1.0 - w) * torch.cos(p0) + w * torch.cos(p1))
    imag = sign * ((1.0 - w) * torch.sin(p0) + w * torch.sin(p1))
    g = torch.clamp(max_harmonic + 0.5 - ratio, 0.0, 1.0)
    return g * real + (1.0 - g), g * imag


class HiFiGAN(nn.Module):
    """The generator: log-mel ``[B, n_mels, T]`` -> audio ``[B, T * hop_length]`` in [-1, 1]."""

    def __init__(self, config: VocoderConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or VocoderConfig()
        self.conv_pre = weight_norm(nn.Conv1d(c.n_mels, c.channels, 7, padding=3))
        self.ups = nn.ModuleList()
        self.mrfs = nn.ModuleList()
        ch = c.channels
        for rate, kernel in zip(c.upsample_rates, c.upsample_kernels, strict=True):
            self.ups.append(
                _wn(nn.ConvTranspose1d(ch, ch // 2, kernel, rate, padding=(kernel - rate) // 2))
            )
            ch //= 2
            self.mrfs.append(
                nn.ModuleList(
                    ResBlock(ch, k, d)
                    for k, d in zip(c.resblock_kernels, c.resblock_dilations, strict=True)
                )
            )
        if c.head == "istft":
            self.bins = c.istft_n_fft // 2 + 1
            # With harmonic_phase the MRF also predicts log F0 and voicing (an auxiliary loss:
            # knowing F0 helps it place the harmonics); the phase follows the F0 branch below.
            extra = 2 if c.harmonic_phase else 0
            self.conv_post = _wn(nn.Conv1d(ch, 2 * self.bins + extra, 7, padding=3))
            if c.harmonic_phase:
                # The phase reads F0 from its own small network. Copy synthesis after 2000
                # steps: with F0 from the MRF's head alone, STOI 0.957 / log-mel L1 0.200 (a 5x
                # F0 loss: 0.960 / 0.220); this branch alone 0.963 / 0.207; this branch plus the
                # MRF's auxiliary head 0.965 / 0.186 (no harmonic phase: 0.930 / 0.194).
                layers: list[nn.Module] = [nn.Conv1d(c.n_mels, c.f0_channels, 5, padding=2)]
                for d in (1, 2, 4):
                    layers += [nn.LeakyReLU(LRELU)]
                    layers += [
                        nn.Conv1d(c.f0_channels, c.f0_channels, 5, dilation=d, padding=2 * d)
                    ]
                layers += [nn.LeakyReLU(LRELU), nn.Conv1d(c.f0_channels, 2, 1)]
                self.f0_net = nn.Sequential(*layers)
                # Centred on the range's geometric mean: the heads start within a factor of 3.5.
                self.log_f0_centre = 0.5 * math.log(c.f0_min_hz * c.f0_max_hz)
            self.istft = InverseSTFT(c.istft_n_fft, c.istft_hop)
            if c.magnitude_prior:
                with warnings.catch_warnings():
                    # Short FFTs leave some low mel bands without an FFT bin: pinv copes.
                    warnings.simplefilter("ignore", UserWarning)
                    fb = torchaudio.functional.melscale_fbanks(
                        self.bins,
                        c.f_min_hz,
                        c.f_max_hz,
                        c.n_mels,
                        c.sample_rate_hz,
                        "slaney",
                        "slaney",
                    )
                # mel = fb.T @ |X|; the mel analysis used a longer window: rescale the magnitude
                # (a Hann window's sum grows with its length).
                inverse = torch.linalg.pinv(fb.T) * (c.istft_n_fft / c.mel_n_fft)
                self.register_buffer("mel_inverse", inverse)  # [bins, n_mels]
        else:
            self.conv_post = _wn(nn.Conv1d(ch, 1, 7, padding=3))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.synthesize(mel).audio

    def synthesize(self, mel: torch.Tensor, f0_hz: torch.Tensor | None = None) -> VocoderOutput:
        """Log-mel -> audio and, with ``harmonic_phase``, the F0 predictions; ``f0_hz``
        (``[B, frames]``, 0 = unvoiced) overrides the F0 branch's in the phase (teacher forcing)."""
        c = self.config
        x = self.conv_pre(mel)
        prior = None
        if c.head == "istft" and c.magnitude_prior:
            magnitude = torch.matmul(self.mel_inverse, torch.exp(mel)).clamp(min=1e-5)
            frames_per_frame = math.prod(c.upsample_rates)
            prior = torch.log(magnitude).repeat_interleave(frames_per_frame, dim=2)
        for up, mrf in zip(self.ups, self.mrfs, strict=True):
            x = up(F.leaky_relu(x, LRELU))
            x = sum(block(x) for block in mrf) / len(mrf)
        x = self.conv_post(F.leaky_relu(x))
        if c.head != "istft":
            return VocoderOutput(torch.tanh(x).squeeze(1))
        log_mag, phase = x[:, : self.bins], x[:, self.bins : 2 * self.bins]
        if prior is not None:
            log_mag = log_mag + prior
        magnitude = torch.exp(log_mag.clamp(max=6.0))
        phase = math.pi * torch.sin(phase)
        real, imag = magnitude * torch.cos(phase), magnitude * torch.sin(phase)
        log_f0 = voicing = aux_log_f0 = aux_voicing = None
        if c.harmonic_phase:
            f0_out = self.f0_net(mel)
            log_f0, voicing = f0_out[:, 0] + self.log_f0_centre, f0_out[:, 1]
            aux_log_f0 = x[:, 2 * self.bins] + self.log_f0_centre
            aux_voicing = x[:, 2 * self.bins + 1]
            # The F0 branch learns from its own loss only; the phase just reads it.
            f0 = torch.exp(log_f0.clamp(math.log(c.f0_min_hz), math.log(c.f0_max_hz))).detach()
            v = torch.sigmoid(voicing).detach()
            if f0_hz is not None:
                f0, v = f0_hz.clamp(min=c.f0_min_hz), (f0_hz > 0).to(f0.dtype)
            rot_re, rot_im = harmonic_rotation(
                f0,
                v,
                c.istft_n_fft,
                c.istft_hop,
                c.sample_rate_hz,
                c.harmonic_max,
            )
            real, imag = real * rot_re - imag * rot_im, real * rot_im + imag * rot_re
        audio = self.istft(real, imag)
        return VocoderOutput(audio.clamp(-1.0, 1.0), log_f0, voicing, aux_log_f0, aux_voicing)


def f0_prediction_loss(
    log_f0: torch.Tensor, voicing_logit: torch.Tensor, f0_hz: torch.Tensor
) -> torch.Tensor:
    """L1 between log F0s on voiced frames plus the voicing cross-entropy (targets: 0 = unvoiced)."""
    voiced = f0_hz > 0
    loss = F.binary_cross_entropy_with_logits(voicing_logit, voiced.to(voicing_logit.dtype))
    if voiced.any():
        loss = loss + torch.abs(log_f0[voiced] - torch.log(f0_hz[voiced])).mean()
    return loss
