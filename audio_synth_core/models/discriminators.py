"""The vocoder's adversaries: HiFi-GAN's multi-period (periods 2, 3, 5, 7, 11) and multi-scale
(raw, /2, /4) discriminators, narrower, and the GAN losses that use them (least-squares adversarial
and feature matching). Only training needs this module; ``vocoder.HiFiGAN`` synthesizes without it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from audio_synth_core.models.vocoder import LRELU, VocoderConfig


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, ch: int) -> None:
        super().__init__()
        self.period = period
        chans = [1, ch, 2 * ch, 4 * ch, 8 * ch]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3, 1), padding=(2, 0)))
            for i in range(4)
        )
        self.convs.append(weight_norm(nn.Conv2d(8 * ch, 8 * ch, (5, 1), 1, padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(8 * ch, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, t = x.shape
        pad = (-t) % self.period
        x = F.pad(x, (0, pad), mode="reflect").view(b, 1, -1, self.period)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU)
            feats.append(x)
        x = self.post(x)
        feats.append(x)
        return x.flatten(1), feats


class ScaleDiscriminator(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        spec = [  # (in, out, kernel, stride, groups)
            (1, ch, 15, 1, 1),
            (ch, 2 * ch, 41, 2, 4),
            (2 * ch, 4 * ch, 41, 2, 16),
            (4 * ch, 8 * ch, 41, 4, 16),
            (8 * ch, 8 * ch, 41, 4, 16),
            (8 * ch, 8 * ch, 5, 1, 1),
        ]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(i, o, k, s, groups=min(g, i), padding=k // 2))
            for i, o, k, s, g in spec
        )
        self.post = weight_norm(nn.Conv1d(8 * ch, 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = x.unsqueeze(1)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU)
            feats.append(x)
        x = self.post(x)
        feats.append(x)
        return x.flatten(1), feats


class Discriminators(nn.Module):
    """Multi-period + multi-scale discriminators; returns scores and features of each."""

    def __init__(self, config: VocoderConfig | None = None) -> None:
        super().__init__()
        c = config or VocoderConfig()
        self.discs = nn.ModuleList(PeriodDiscriminator(p, c.disc_channels) for p in c.periods)
        self.discs.extend(ScaleDiscriminator(c.disc_channels) for _ in range(c.scales))
        self.n_period = len(c.periods)

    def forward(self, audio: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        scores, feats = [], []
        for i, disc in enumerate(self.discs):
            scale = i - self.n_period
            x = audio
            if scale > 0:
                x = F.avg_pool1d(audio.unsqueeze(1), 2**scale, 2**scale).squeeze(1)
            s, f = disc(x)
            scores.append(s)
            feats.append(f)
        return scores, feats


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss for the discriminators."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for r, f in zip(real, fake, strict=True))


def generator_adversarial_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    return sum(torch.mean((1 - f) ** 2) for f in fake)


def feature_matching_loss(
    real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]
) -> torch.Tensor:
    return sum(
        torch.mean(torch.abs(r.detach() - f))
        for rs, fs in zip(real, fake, strict=True)
        for r, f in zip(rs, fs, strict=True)
    )
