"""The one Poisson bootstrap (assessment/bootstrap.py): weights, paired means, group means, CIs."""

from __future__ import annotations

import numpy as np
import pytest

from audio_synth_core.assessment import bootstrap
from audio_synth_core.assessment.bootstrap import (
    bootstrap_group_means,
    bootstrap_means,
    percentile_ci,
    poisson1_weights,
)


def test_poisson1_weights_have_the_poisson1_moments() -> None:
    w = poisson1_weights(np.random.default_rng(0), (2000, 500))
    assert w.dtype == np.float64 and w.min() == 0 and w.max() <= 10
    assert w.mean() == pytest.approx(1.0, abs=0.01) and w.var() == pytest.approx(1.0, abs=0.02)
    counts = np.bincount(w.astype(int).ravel(), minlength=4)[:4] / w.size
    assert counts == pytest.approx(
        [np.exp(-1), np.exp(-1), np.exp(-1) / 2, np.exp(-1) / 6], abs=0.005
    )


def test_means_are_one_group_and_share_weights_across_columns(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(40, 3))
    values[5, 1] = np.nan
    # Small blocks: replicates drawn in several blocks give the same result as one.
    monkeypatch.setattr(bootstrap, "BOOT_BLOCK_ELEMENTS", 40 * 7)
    means = bootstrap_means(values, 50, np.random.default_rng(2))
    groups = bootstrap_group_means(
        values, {"g": (np.zeros(40, int), 1)}, 50, np.random.default_rng(2)
    )
    np.testing.assert_array_equal(means, groups["g"][:, 0, :])
    # Identical columns get identical replicates: the resampling is paired across columns.
    twin = bootstrap_means(
        np.column_stack([values[:, 0], values[:, 0]]), 50, np.random.default_rng(3)
    )
    np.testing.assert_array_equal(twin[:, 0], twin[:, 1])
    assert bootstrap_means(np.empty((0, 2)), 5, np.random.default_rng(0)).shape == (5, 2)


def test_group_means_resample_each_group_on_its_own_rows() -> None:
    values = np.array([[1.0], [1.0], [5.0], [5.0], [np.nan]])
    codes = {"kind": (np.array([0, 0, 1, 1, 2]), 3)}
    boot = bootstrap_group_means(values, codes, 200, np.random.default_rng(0))["kind"]
    assert boot.shape == (200, 3, 1)
    assert np.nanmax(boot[:, 0]) == 1.0 and np.nanmin(boot[:, 1]) == 5.0
    assert np.isnan(boot[:, 2]).all()  # a group with no values has no mean


@pytest.mark.parametrize(
    ("draws", "expected"),
    [
        (np.array([np.nan, 1.0]), (None, None)),
        (np.array([]), (None, None)),
        (np.arange(101, dtype=float), (pytest.approx(2.5), pytest.approx(97.5))),
    ],
)
def test_percentile_ci(draws: np.ndarray, expected: tuple) -> None:
    assert percentile_ci(draws, 0.95) == expected
