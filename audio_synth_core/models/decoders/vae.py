"""``vae``: per-frame latents. A posterior encoder sees the target mel, a conditional prior sees
only the text; L1 + KL. Inference samples the prior (``prior_temperature``) from explicit noise."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from audio_synth_core.models.layers import ConvNormStack, FFTStack, masked_mean

if TYPE_CHECKING:
    from audio_synth_core.models.acoustic import AcousticConfig


def _gaussian_kl(m_q, logs_q, m_p, logs_p) -> torch.Tensor:
    """KL(N(m_q, e^logs_q) || N(m_p, e^logs_p)) per element."""
    return (
        logs_p
        - logs_q
        + 0.5 * (torch.exp(2 * logs_q) + (m_q - m_p) ** 2) * torch.exp(-2 * logs_p)
        - 0.5
    )


class VAEDecoder(nn.Module):
    def __init__(self, c: AcousticConfig) -> None:
        super().__init__()
        self.c = c
        self.posterior = ConvNormStack(c.d_model + c.n_mels, c.d_model, 2 * c.latent_dim, 5, 0.0)
        self.prior = ConvNormStack(c.d_model, c.d_model, 2 * c.latent_dim, 5, 0.0)
        self.z_in = nn.Linear(c.latent_dim, c.d_model)
        self.stack = FFTStack(c, c.decoder_layers)
        self.out = nn.Linear(c.d_model, c.n_mels)

    def noise_shape(self, batch: int, frames: int) -> tuple[int, ...]:
        return (batch, frames, self.c.latent_dim)

    def _decode(self, h, mu, mask, z) -> torch.Tensor:
        return mu + self.out(self.stack(h + self.z_in(z), mask))

    def losses(self, h, mu, mask, target, generator) -> dict[str, torch.Tensor]:
        m_q, logs_q = self.posterior(torch.cat([h, target], -1), mask).chunk(2, -1)
        m_p, logs_p = self.prior(h, mask).chunk(2, -1)
        eps = torch.randn(m_q.shape, generator=generator, device=m_q.device)
        z = (m_q + torch.exp(logs_q) * eps) * mask.unsqueeze(-1)
        pred = self._decode(h, mu, mask, z)
        kl = masked_mean(_gaussian_kl(m_q, logs_q, m_p, logs_p), mask) * self.c.latent_dim
        return {"mel_l1": masked_mean((pred - target).abs(), mask), "kl": kl}

    def weighted(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return losses["mel_l1"] + self.c.kl_weight * losses["kl"]

    def forward(self, h, mu, mask, noise) -> torch.Tensor:
        m_p, logs_p = self.prior(h, mask).chunk(2, -1)
        z = (m_p + torch.exp(logs_p) * noise * self.c.prior_temperature) * mask.unsqueeze(-1)
        return self._decode(h, mu, mask, z) * mask.unsqueeze(-1)
