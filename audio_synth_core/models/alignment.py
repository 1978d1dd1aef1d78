"""Which frames belong to which symbol: monotonic alignment search (training) and the length
regulator that repeats each symbol's features by its duration (training and inference).

MAS (Glow-TTS) finds, per utterance, the most likely monotonic path of frames through symbols; it
gives each symbol its duration, which the duration predictor learns. ``expand`` is an index
computation (cumsum + compare + gather) without data-dependent Python loops, so it exports to ONNX;
the ONNX runtime's numpy twin is ``generators.onnx_runtime.expand``.
"""

from __future__ import annotations

import numpy as np
import torch


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
