"""Shared comparison test data: a valid config to override, synthetic per-prompt metrics, and a
hand-made comparison table for the decision."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audio_synth_core.compare.table import TABLE_COLUMNS, GateStats

NEURAL = {"name": "neural", "params": {"model_uri": "models:/m@champion"}}
CHALLENGER = {"name": "neural", "params": {"model_uri": "models:/m/2"}}
OK_GATES = GateStats(
    n_items=20, n_failed=0, pass_rate=0.95, privacy_flags=0, parity_attributes=("kind",)
)


def config(**overrides) -> dict:
    """A valid comparison config (champion vs challenger on wer), with ``overrides``."""
    cfg = {
        "candidates": [
            {"label": "champion", "generator": NEURAL},
            {"label": "challenger", "generator": CHALLENGER},
        ],
        "metric": {"name": "wer", "margin": 0.05},
        "promotion": {"model_name": "m", "challenger": "challenger", "incumbent": "champion"},
    }
    cfg.update(overrides)
    return cfg


def frames(a: np.ndarray, b: np.ndarray, metric: str = "wer") -> dict[str, pd.DataFrame]:
    """Two candidates' per-prompt metrics on the same prompts."""
    ids = [f"p{i}" for i in range(len(a))]
    return {
        "a": pd.DataFrame({"prompt_id": ids, metric: a, "passed": True}),
        "b": pd.DataFrame({"prompt_id": ids, metric: b, "passed": True}),
    }


def synthetic(rng: np.random.Generator, n: int, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Prompts differ a lot (difficulty), candidates differ by ``delta``: only pairing sees it."""
    difficulty = rng.normal(0.3, 0.2, n)
    return difficulty + rng.normal(0, 0.02, n), difficulty + delta + rng.normal(0, 0.02, n)


def decision_table(
    diff: float | None, lo: float | None, hi: float | None, metric: str = "wer", n: int = 20
) -> pd.DataFrame:
    """A comparison table with the challenger's paired difference versus the champion."""
    nan = float("nan")
    f = lambda v: nan if v is None else v  # noqa: E731
    rows = [
        ["champion", metric, n, 0.3, 0.25, 0.35, "champion", None, nan, nan, nan],
        ["challenger", metric, n, 0.3 + f(diff), nan, nan, "champion", n, f(diff), f(lo), f(hi)],
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
