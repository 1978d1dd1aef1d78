"""Alignment: monotonic alignment search and the length regulator (``models.alignment``)."""

from __future__ import annotations

import numpy as np
import torch

from audio_synth_core.models.alignment import expand, monotonic_alignment_search


def test_expand_matches_repeat_interleave() -> None:
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    durations = torch.tensor([[1, 0, 3], [2, 2, 0]])
    frames, mask = expand(hidden, durations)
    assert frames.shape == (2, 4, 2)
    assert mask.tolist() == [[True] * 4, [True] * 4]
    for b in range(2):
        want = torch.repeat_interleave(hidden[b], durations[b], dim=0)
        assert torch.equal(frames[b, : len(want)], want)
    padded, mask = expand(hidden, torch.tensor([[1, 1, 1], [1, 0, 0]]))
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert torch.equal(padded[1, 1:], torch.zeros(2, 2))


def test_mas_finds_the_planted_path_and_covers_every_frame() -> None:
    log_p = np.full((2, 3, 7), -10.0)
    for n, (a, b) in enumerate([(0, 2), (2, 3), (3, 7)]):
        log_p[0, n, a:b] = 0.0
    log_p[1] = np.random.default_rng(0).standard_normal((3, 7))
    durations = monotonic_alignment_search(log_p, np.array([3, 2]), np.array([7, 5]))
    assert durations[0].tolist() == [2, 1, 4]
    assert durations[1].sum() == 5 and durations[1, 2] == 0 and (durations[1, :2] >= 1).all()
