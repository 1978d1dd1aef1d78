"""A small non-autoregressive acoustic model: symbol ids -> log-mel frames (FastSpeech-style).

Encoder: symbol embedding + sinusoidal positions + feed-forward Transformer blocks (self-attention and
a 1-D convolution). Each symbol also gets ``mu``, a coarse mel frame (in normalized mel units).

Alignment (training only): monotonic alignment search (MAS, Glow-TTS) on the fly. For every
utterance the most likely monotonic path of frames through symbols is found under
``N(mu_symbol, I)``; it gives each symbol its duration (frame count), and ``mu`` is trained towards
the frames it was aligned to (the "prior" loss). Nothing outside the model is needed: any (text,
audio) corpus trains it, not only espeak's.

Durations: a convolutional duration predictor learns ``log(1 + frames)`` from the MAS durations on
the detached encoder output. The length regulator repeats each symbol's hidden state by its duration
with an index computation (cumsum + compare + gather), which exports to ONNX without Python loops.

Decoder variants (``AcousticConfig.decoder``), each predicting the mel as ``mu`` plus a residual:
- ``deterministic``: feed-forward Transformer blocks, L1 loss.
- ``vae``: per-frame latents; a posterior encoder sees the target mel, a conditional prior sees only
  the text; L1 + KL. Inference samples the prior (temperature) from a seeded ``torch.Generator``.
- ``diffusion``: a DDPM (cosine schedule) over the residual ``mel - mu`` with a conditioned dilated
  convolution denoiser (predicting the clean residual by default, or the noise). Inference runs
  DDIM steps (``eta`` = 1 by default: stochastic, seeded).

ONNX: ``encode`` -> (hidden, mu, log durations), ``durations_from_log``, ``expand`` and
``decode(hidden, mu, mask, noise)`` take tensors only; randomness enters as an explicit ``noise``
tensor of ``noise_shape(batch, frames)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from audio_synth_core.errors import ConfigError

DECODERS = ("deterministic", "vae", "diffusion")

# Size presets. "tiny" trains meaningfully in minutes on 2 CPU cores; "base" is FastSpeech 2-sized.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "d_model": 96,
        "n_heads": 2,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "ffn_dim": 192,
        "duration_filters": 96,
        "latent_dim": 8,
        "diffusion_channels": 64,
        "diffusion_layers": 6,
    },
    "small": {
        "d_model": 192,
        "n_heads": 2,
        "encoder_layers": 4,
        "decoder_layers": 4,
        "ffn_dim": 768,
        "duration_filters": 192,
        "latent_dim": 16,
        "diffusion_channels": 128,
        "diffusion_layers": 12,
    },
    "base": {
        "d_model": 256,
        "n_heads": 2,
        "encoder_layers": 6,
        "decoder_layers": 6,
        "ffn_dim": 1024,
        "duration_filters": 256,
        "latent_dim": 16,
        "diffusion_channels": 256,
        "diffusion_layers": 20,
    },
}


@dataclass(frozen=True)
class AcousticConfig:
    """Hyperparameters of ``AcousticModel``; JSON-serializable (``to_dict``)."""

    n_symbols: int
    n_mels: int = 80
    decoder: str = "deterministic"
    d_model: int = 96
    n_heads: int = 2
    encoder_layers: int = 2
    decoder_layers: int = 2
    ffn_dim: int = 192
    kernel_size: int = 3
    dropout: float = 0.1
    duration_filters: int = 96
    # vae
    latent_dim: int = 8
    kl_weight: float = 0.02
    prior_temperature: float = 0.667
    # diffusion
    diffusion_channels: int = 64
    diffusion_layers: int = 6
    diffusion_steps: int = 50
    inference_steps: int = 25
    ddim_eta: float = 1.0
    # "x0": the denoiser predicts the clean residual (an untrained one predicts 0, i.e. the
    # coarse mel mu: it degrades gracefully and learns in minutes); "eps": the noise (DDPM).
    diffusion_prediction: str = "x0"

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {self.decoder!r}; expected one of {DECODERS}")
        if self.d_model % self.n_heads:
            raise ConfigError("d_model must be divisible by n_heads")
        if self.diffusion_prediction not in ("x0", "eps"):
            raise ConfigError("diffusion_prediction must be 'x0' or 'eps'")
        if not 1 <= self.inference_steps <= self.diffusion_steps:
            raise ConfigError("inference_steps must be in [1, diffusion_steps]")

    @classmethod
    def sized(cls, size: str, n_symbols: int, **overrides: Any) -> AcousticConfig:
        """A config from a size preset (``tiny``, ``small``, ``base``) plus explicit overrides."""
        if size not in SIZES:
            raise ConfigError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        return cls.from_dict({**SIZES[size], "n_symbols": n_symbols, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcousticConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown AcousticConfig keys: {sorted(unknown)}")
        return cls(**data)

    def with_(self, **changes: Any) -> AcousticConfig:
        return replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# Building blocks


def sinusoids(length: torch.Tensor | int, channels: int, device: torch.device) -> torch.Tensor:
    """Sinusoidal position encoding ``[length, channels]``."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    half = channels // 2
    # Float arange: an int64 arange divided by an int exports to ONNX as integer division.
    steps = torch.arange(half, device=device, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * steps / max(half - 1, 1))
    angles = pos * freq.unsqueeze(0)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def lengths_to_mask(
    lengths: torch.Tensor, max_len: int | torch.Tensor | None = None
) -> torch.Tensor:
    """``[B]`` lengths -> ``[B, max_len]`` boolean mask, True on valid positions."""
    if max_len is None:
        max_len = lengths.max()
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a key padding mask.

    Written out instead of ``nn.MultiheadAttention``, whose fast path bakes batch and length into
    the traced graph and breaks ONNX export with dynamic axes.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, c // self.n_heads).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(c // self.n_heads)
        scores = scores.masked_fill(~mask.view(b, 1, 1, t), -1e4)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        y = torch.matmul(weights, v).transpose(1, 2).reshape(b, t, c)
        return self.out(y)


class FFTBlock(nn.Module):
    """Self-attention + convolutional feed-forward, post-norm, masked (FastSpeech's FFT block)."""

    def __init__(self, d_model: int, n_heads: int, ffn_dim: int, kernel: int, dropout: float):
        super().__init__()
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.conv1 = nn.Conv1d(d_model, ffn_dim, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(ffn_dim, d_model, 1)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        a = self.attn(x, mask)
        x = self.norm1(x + self.dropout(a)) * keep
        y = self.conv2(F.relu(self.conv1(x.transpose(1, 2)))).transpose(1, 2)
        return self.norm2(x + self.dropout(y)) * keep


class FFTStack(nn.Module):
    def __init__(self, c: AcousticConfig, layers: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            FFTBlock(c.d_model, c.n_heads, c.ffn_dim, c.kernel_size, c.dropout)
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + sinusoids(x.shape[1], x.shape[2], x.device).unsqueeze(0)
        for block in self.blocks:
            x = block(x, mask)
        return x


class ConvNormStack(nn.Module):
    """Conv1d -> ReLU -> LayerNorm -> dropout, twice; used by the duration predictor and VAE."""

    def __init__(self, c_in: int, c_hidden: int, c_out: int, kernel: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_hidden, kernel, padding=kernel // 2)
        self.norm1 = nn.LayerNorm(c_hidden)
        self.conv2 = nn.Conv1d(c_hidden, c_hidden, kernel, padding=kernel // 2)
        self.norm2 = nn.LayerNorm(c_hidden)
        self.out = nn.Linear(c_hidden, c_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, c_in]`` -> ``[B, T, c_out]``, zero outside the mask."""
        keep = mask.unsqueeze(-1).to(x.dtype)
        h = F.relu(self.conv1((x * keep).transpose(1, 2))).transpose(1, 2)
        h = self.dropout(self.norm1(h)) * keep
        h = F.relu(self.conv2(h.transpose(1, 2))).transpose(1, 2)
        h = self.dropout(self.norm2(h)) * keep
        return self.out(h) * keep


# ---------------------------------------------------------------------------------------------
# Alignment and length regulation


def monotonic_alignment_search(
    log_p: np.ndarray, text_lengths: np.ndarray, frame_lengths: np.ndarray
) -> np.ndarray:
    """Most likely monotonic alignment (Glow-TTS MAS), batched over utterances.

    ``log_p [B, N, T]``: log-likelihood of frame t under symbol n. Every frame goes to exactly one
    symbol, symbols in order, each at least one frame; needs ``frame_length >= text_length``.
    Returns durations ``[B, N]`` (int64, zero on padding).
    """
    batch, n_max, t_max = log_p.shape
    neg = -1e9
    value = np.full((batch, n_max), neg, dtype=np.float64)
    value[:, 0] = log_p[:, 0, 0]
    # came_from_prev[b, n, t]: the best path to (n, t) came from (n - 1, t - 1).
    came_from_prev = np.zeros((batch, n_max, t_max), dtype=bool)
    for t in range(1, t_max):
        shifted = np.concatenate([np.full((batch, 1), neg), value[:, :-1]], axis=1)
        from_prev = shifted > value
        value = np.where(from_prev, shifted, value) + log_p[:, :, t]
        came_from_prev[:, :, t] = from_prev
    durations = np.zeros((batch, n_max), dtype=np.int64)
    for b in range(batch):
        n = int(text_lengths[b]) - 1
        for t in range(int(frame_lengths[b]) - 1, -1, -1):
            durations[b, n] += 1
            if n > 0 and (came_from_prev[b, n, t] or n == t):
                n -= 1
    return durations


def expand(
    hidden: torch.Tensor, durations: torch.Tensor, max_frames: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Length regulator: repeat symbol ``hidden [B, N, C]`` by integer ``durations [B, N]``.

    Returns ``(frames [B, T, C], frame_mask [B, T])`` with ``T = max total`` (or ``max_frames``).
    No Python control flow depends on the data, so it traces and exports to ONNX.
    """
    ends = torch.cumsum(durations, dim=1)
    totals = ends[:, -1]
    t_max = totals.max() if max_frames is None else max_frames
    t = torch.arange(t_max, device=hidden.device)
    # Symbol index of frame t = number of symbols that ended at or before t.
    index = (ends.unsqueeze(1) <= t.view(1, -1, 1)).sum(-1)
    index = index.clamp(max=hidden.shape[1] - 1)
    frames = torch.gather(hidden, 1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[2]))
    mask = t.unsqueeze(0) < totals.unsqueeze(1)
    return frames * mask.unsqueeze(-1).to(frames.dtype), mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T, ...]`` over positions where ``mask [B, T]`` holds."""
    m = mask.to(x.dtype).view(*mask.shape, *([1] * (x.dim() - mask.dim())))
    return (x * m).sum() / (m.sum() * x[0, 0].numel()).clamp(min=1.0)


# ---------------------------------------------------------------------------------------------
# Decoders


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


_DECODER_CLASSES = {
    "deterministic": DeterministicDecoder,
    "vae": VAEDecoder,
    "diffusion": DiffusionDecoder,
}


# ---------------------------------------------------------------------------------------------
# The model


class AcousticModel(nn.Module):
    """Symbol ids -> log-mel; see the module docstring for the parts."""

    def __init__(self, config: AcousticConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.n_symbols, c.d_model, padding_idx=0)
        nn.init.normal_(self.embedding.weight, 0.0, c.d_model**-0.5)
        self.encoder = FFTStack(c, c.encoder_layers)
        self.mu = nn.Linear(c.d_model, c.n_mels)
        self.duration = ConvNormStack(c.d_model, c.duration_filters, 1, 3, c.dropout)
        self.decoder = _DECODER_CLASSES[c.decoder](c)
        # Per-bin mel statistics of the training set: the model works in normalized units.
        self.register_buffer("mel_mean", torch.zeros(c.n_mels))
        self.register_buffer("mel_std", torch.ones(c.n_mels))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std.clamp(min=1e-3))

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, T, n_mels]`` -> normalized units."""
        return (mel - self.mel_mean) / self.mel_std

    def denormalize(self, mel: torch.Tensor) -> torch.Tensor:
        return mel * self.mel_std + self.mel_mean

    # -- exportable pieces ----------------------------------------------------------------------

    def encode(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``ids [B, N]`` -> hidden ``[B, N, C]``, mu ``[B, N, n_mels]``, log-duration, mask."""
        mask = lengths_to_mask(lengths, ids.shape[1])
        h = self.encoder(self.embedding(ids) * math.sqrt(self.config.d_model), mask)
        mu = self.mu(h) * mask.unsqueeze(-1)
        log_dur = self.duration(h.detach(), mask).squeeze(-1)
        return h, mu, log_dur, mask

    @staticmethod
    def durations_from_log(
        log_dur: torch.Tensor, mask: torch.Tensor, length_scale: float = 1.0
    ) -> torch.Tensor:
        """Predicted integer frame counts: at least one frame per symbol, zero on padding."""
        frames = torch.round((torch.exp(log_dur) - 1.0) * length_scale).clamp(min=1.0)
        return (frames * mask.to(frames.dtype)).long()

    def noise_shape(self, batch: int, frames: int) -> tuple[int, ...]:
        return self.decoder.noise_shape(batch, frames)

    def decode(
        self,
        h_frames: torch.Tensor,
        mu_frames: torch.Tensor,
        mask: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Expanded hidden/mu ``[B, T, .]`` -> log-mel ``[B, n_mels, T]`` (denormalized)."""
        mel = self.denormalize(self.decoder(h_frames, mu_frames, mask, noise))
        return (mel * mask.unsqueeze(-1)).transpose(1, 2)

    # -- inference ------------------------------------------------------------------------------

    @torch.no_grad()
    def infer(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
        length_scale: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel ``[B, n_mels, T]`` and frame lengths ``[B]``; random draws from ``generator``."""
        h, mu, log_dur, mask = self.encode(ids, lengths)
        durations = self.durations_from_log(log_dur, mask, length_scale)
        h_frames, frame_mask = expand(h, durations)
        mu_frames, _ = expand(mu, durations)
        shape = self.noise_shape(ids.shape[0], h_frames.shape[1])
        noise = torch.randn(shape, generator=generator, device=ids.device)
        return self.decode(h_frames, mu_frames, frame_mask, noise), durations.sum(1)

    # -- training -------------------------------------------------------------------------------

    def losses(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training losses for a batch; ``mel [B, n_mels, T]`` log-mel; ``"loss"`` is the total."""
        target = self.normalize(mel.transpose(1, 2))
        frame_mask = lengths_to_mask(mel_lengths, target.shape[1])
        h, mu, log_dur, mask = self.encode(ids, lengths)
        with torch.no_grad():
            # log N(x_t; mu_n, I) up to a constant, [B, N, T].
            log_p = -0.5 * torch.cdist(mu, target).pow(2)
            durations = monotonic_alignment_search(
                log_p.cpu().numpy(), lengths.cpu().numpy(), mel_lengths.cpu().numpy()
            )
            durations = torch.from_numpy(durations).to(ids.device)
        h_frames, _ = expand(h, durations, target.shape[1])
        mu_frames, _ = expand(mu, durations, target.shape[1])
        prior = masked_mean((mu_frames - target) ** 2, frame_mask)
        dur_target = torch.log1p(durations.to(log_dur.dtype))
        duration = ((log_dur - dur_target) ** 2 * mask).sum() / mask.sum()
        out = self.decoder.losses(h_frames, mu_frames, frame_mask, target, generator)
        weighted = getattr(self.decoder, "weighted", None)
        dec_total = weighted(out) if weighted else sum(out.values())
        out = {"prior": prior, "duration": duration, **out}
        out["loss"] = prior + duration + dec_total
        return out


class EncoderGraph(nn.Module):
    """Exportable first half: ``ids, lengths`` -> expanded hidden, expanded mu, frame mask.

    Encoder, duration rounding and length regulation in one graph with dynamic batch and lengths
    (verified with the TorchScript ONNX exporter, opset 17, against onnxruntime).
    """

    def __init__(self, model: AcousticModel, length_scale: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.length_scale = length_scale

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, mu, log_dur, mask = self.model.encode(ids, lengths)
        durations = self.model.durations_from_log(log_dur, mask, self.length_scale)
        h_frames, frame_mask = expand(h, durations)
        mu_frames, _ = expand(mu, durations)
        return h_frames, mu_frames, frame_mask


class DecoderGraph(nn.Module):
    """Exportable second half: expanded features + ``noise`` (``noise_shape``) -> log-mel."""

    def __init__(self, model: AcousticModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        h_frames: torch.Tensor,
        mu_frames: torch.Tensor,
        mask: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        return self.model.decode(h_frames, mu_frames, mask, noise)
