"""``diffusion``: a DDPM (cosine schedule) over the residual ``mel - mu`` with a conditioned dilated
convolution denoiser (DiffWave-like) that predicts the clean residual (default) or the noise.
Inference runs DDIM steps (``ddim_eta`` 1 by default: stochastic), every draw from explicit noise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from audio_synth_core.models.layers import masked_mean, sinusoids

if TYPE_CHECKING:
    from audio_synth_core.models.acoustic import AcousticConfig


def cosine_alphas_cumprod(steps: int) -> torch.Tensor:
    """Cumulative alpha products of the cosine noise schedule (Nichol & Dhariwal), ``[steps]``."""
    s = 0.008
    x = torch.linspace(0, steps, steps + 1, dtype=torch.float64)
    f = torch.cos(((x / steps) + s) / (1 + s) * math.pi / 2) ** 2
    alphas = (f[1:] / f[:-1]).clamp(min=1e-3, max=0.9999)
    return torch.cumprod(alphas, 0).float()


class DiffusionDecoder(nn.Module):
    """DDPM over ``target - mu`` with a gated dilated-convolution denoiser (DiffWave-like)."""

    def __init__(self, c: AcousticConfig) -> None:
        super().__init__()
        self.c = c
        ch = c.diffusion_channels
        self.register_buffer("alpha_bars", cosine_alphas_cumprod(c.diffusion_steps))
        self.x_in = nn.Conv1d(c.n_mels, ch, 1)
        self.cond_in = nn.Conv1d(c.d_model, 2 * ch * c.diffusion_layers, 1)
        self.step_mlp = nn.Sequential(nn.Linear(ch, 4 * ch), nn.SiLU(), nn.Linear(4 * ch, ch))
        self.dilated = nn.ModuleList(
            nn.Conv1d(ch, 2 * ch, 3, padding=2 ** (i % 4), dilation=2 ** (i % 4))
            for i in range(c.diffusion_layers)
        )
        self.res_skip = nn.ModuleList(nn.Conv1d(ch, 2 * ch, 1) for _ in range(c.diffusion_layers))
        self.out = nn.Sequential(nn.Conv1d(ch, ch, 1), nn.ReLU(), nn.Conv1d(ch, c.n_mels, 1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def noise_shape(self, batch: int, frames: int) -> tuple[int, ...]:
        # The starting noise plus one draw per DDIM step.
        return (self.c.inference_steps + 1, batch, frames, self.c.n_mels)

    def denoise(self, x_t, step, h, mask) -> torch.Tensor:
        """The network's prediction (clean residual or noise, per ``diffusion_prediction``) for
        ``x_t [B, T, n_mels]`` at integer ``step [B]``."""
        ch = self.c.diffusion_channels
        keep = mask.unsqueeze(1).to(x_t.dtype)
        x = self.x_in(x_t.transpose(1, 2)) * keep
        emb = self.step_mlp(sinusoids(self.c.diffusion_steps, ch, x.device)[step])
        # Masked, so padding carries no step embedding into the dilated convs (batch independence).
        x = (x + emb.unsqueeze(-1)) * keep
        cond = self.cond_in(h.transpose(1, 2)).chunk(self.c.diffusion_layers, 1)
        skip = torch.zeros_like(x)
        for conv, res_skip, cnd in zip(self.dilated, self.res_skip, cond, strict=True):
            a, b = (conv(x) + cnd).chunk(2, 1)
            y = torch.tanh(a) * torch.sigmoid(b)
            r, s = res_skip(y).chunk(2, 1)
            x = (x + r) * keep / math.sqrt(2.0)
            skip = skip + s
        skip = skip / math.sqrt(self.c.diffusion_layers)
        return (self.out(skip) * keep).transpose(1, 2)

    def losses(self, h, mu, mask, target, generator) -> dict[str, torch.Tensor]:
        x0 = (target - mu) * mask.unsqueeze(-1)
        batch = x0.shape[0]
        step = torch.randint(
            0, self.c.diffusion_steps, (batch,), generator=generator, device=x0.device
        )
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        ab = self.alpha_bars[step].view(-1, 1, 1)
        x_t = torch.sqrt(ab) * x0 + torch.sqrt(1 - ab) * eps
        pred = self.denoise(x_t, step, h, mask)
        if self.c.diffusion_prediction == "x0":
            return {"x0_mse": masked_mean((pred - x0) ** 2, mask)}
        return {"eps_mse": masked_mean((pred - eps) ** 2, mask)}

    def forward(self, h, mu, mask, noise) -> torch.Tensor:
        """DDIM sampling over ``inference_steps`` evenly spaced steps; ``noise`` as noise_shape."""
        c = self.c
        keep = mask.unsqueeze(-1).to(h.dtype)
        steps = np.linspace(c.diffusion_steps - 1, 0, c.inference_steps).round().astype(int)
        x = noise[0] * keep
        for i, s in enumerate(steps.tolist()):
            prev = int(steps[i + 1]) if i + 1 < len(steps) else -1
            ab = self.alpha_bars[s]
            ab_prev = self.alpha_bars[prev] if prev >= 0 else torch.ones_like(ab)
            step = torch.full((x.shape[0],), s, dtype=torch.long, device=x.device)
            pred = self.denoise(x, step, h, mask)
            if c.diffusion_prediction == "x0":
                x0 = pred.clamp(-6.0, 6.0)
                eps = (x - torch.sqrt(ab) * x0) / torch.sqrt(1 - ab)
            else:
                eps = pred
                x0 = ((x - torch.sqrt(1 - ab) * eps) / torch.sqrt(ab)).clamp(-6.0, 6.0)
            sigma = c.ddim_eta * torch.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
            direction = torch.sqrt((1 - ab_prev - sigma**2).clamp(min=0.0)) * eps
            x = (torch.sqrt(ab_prev) * x0 + direction + sigma * noise[i + 1]) * keep
        return (mu + x) * keep
