"""Layers the acoustic model's encoder and decoders share: sinusoidal positions, masks, masked
self-attention, FastSpeech's feed-forward Transformer (FFT) blocks and a conv/norm stack.

Every layer takes a boolean mask (True on valid positions) and keeps padding at zero, so an item's
output does not depend on how much padding its batch adds; nothing here uses a module whose traced
graph would fix the batch or the length, so all of it exports to ONNX with dynamic axes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from audio_synth_core.models.acoustic import AcousticConfig


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


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T, ...]`` over positions where ``mask [B, T]`` holds."""
    m = mask.to(x.dtype).view(*mask.shape, *([1] * (x.dim() - mask.dim())))
    return (x * m).sum() / (m.sum() * x[0, 0].numel()).clamp(min=1.0)
