"""What both training loops share: device choice, the learning-rate schedule, running means of the
logged metrics, the hook signatures and the hyperparameter check."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from audio_synth_core.errors import ConfigError

LogHook = Callable[[int, dict[str, float]], None]
SampleHook = Callable[[int, np.ndarray, int], None]


def check_positive(obj: Any, *names: str) -> None:
    """A ``ConfigError`` naming the first of ``obj``'s fields ``names`` that is below 1."""
    for name in names:
        if getattr(obj, name) < 1:
            raise ConfigError(f"{type(obj).__name__}.{name} must be >= 1")


def default_device() -> torch.device:
    """CUDA when torch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fork_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose RNG ``torch.random.fork_rng`` must save and restore."""
    return [device.index or 0] if device.type == "cuda" else []


class MetricWindow:
    """Running means of the metrics since the last log."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor | float]) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1

    def flush(self) -> dict[str, float]:
        out = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return out


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warmup, then cosine decay to 0.1 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor
