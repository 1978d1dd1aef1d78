"""``deterministic``: feed-forward Transformer blocks over the expanded text features, L1 loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from audio_synth_core.models.layers import FFTStack, masked_mean

if TYPE_CHECKING:
    from audio_synth_core.models.acoustic import AcousticConfig


class DeterministicDecoder(nn.Module):
    def __init__(self, c: AcousticConfig) -> None:
        super().__init__()
        self.stack = FFTStack(c, c.decoder_layers)
        self.out = nn.Linear(c.d_model, c.n_mels)

    def noise_shape(self, batch: int, frames: int) -> tuple[int, ...]:
        return (0,)

    def losses(self, h, mu, mask, target, generator) -> dict[str, torch.Tensor]:
        pred = mu + self.out(self.stack(h, mask))
        return {"mel_l1": masked_mean((pred - target).abs(), mask)}

    def forward(self, h, mu, mask, noise) -> torch.Tensor:
        return (mu + self.out(self.stack(h, mask))) * mask.unsqueeze(-1)
