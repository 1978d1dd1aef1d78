"""Balanced allocation of a dataset's items: how many items each split, source and synthetic
speaker gets, and which text each item speaks.

The algorithm (stratified quota allocation), all vectorized over arrays, so a plan of millions of
items costs a few array operations per (split, language) cell, never a Python object per item:

1. Group targets. For each attribute in ``balance.by`` every group present in the pool gets an
   equal share; an attribute only named by constraints keeps its share of the pool. Min/max
   constraints are applied by water-filling: groups outside their bounds are fixed at the bound and
   the rest is re-spread over the free groups in proportion, until no bound is violated (a set of
   bounds no share vector satisfies is an error naming the attribute).
2. Speaker weights by raking (iterative proportional fitting): starting from equal weights, each
   attribute's groups are scaled in turn to their target share, 100 rounds or until every share is
   within 1e-6. Raking keeps weights as even as the targets allow ("speaker" in ``by`` pins them).
3. Quotas by largest-remainder rounding (Hamilton): ``floor(n * w)`` each, then the items left
   over go to the largest fractional remainders (ties broken by index). Sums are exact.
4. Texts. Each source's items cycle through its texts in a seeded permutation, so every text is
   used ``floor`` or ``ceil`` of ``items / texts`` times; sources are interleaved in proportion
   (item ``j`` of a source sorts at ``(j + 0.5) / n_source``), and speakers take consecutive runs of
   that sequence, so one speaker's items are distinct texts and a mix of sources.

Everything random comes from ``numpy.random.default_rng(seed_of(...))``: the same spec gives the
same allocation on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from audio_synth_core.config.dataset import BalanceConfig
from audio_synth_core.errors import ConfigError

RAKE_ROUNDS = 100


def largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total`` in proportion to ``shares`` (Hamilton's method)."""
    shares = np.asarray(shares, dtype=np.float64)
    if total <= 0 or shares.size == 0 or shares.sum() <= 0:
        return np.zeros(shares.size, dtype=np.int64)
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(np.int64)
    left = int(total - counts.sum())
    if left > 0:
        # Stable sort on the negated remainder: ties go to the lower index.
        order = np.argsort(-(exact - counts), kind="stable")[:left]
        counts[order] += 1
    return counts


def water_fill(base: np.ndarray, lower: np.ndarray, upper: np.ndarray, what: str) -> np.ndarray:
    """Shares closest to ``base`` (in proportion) that respect ``lower <= share <= upper``."""
    base = np.asarray(base, dtype=np.float64)
    if lower.sum() > 1 + 1e-9 or upper.sum() < 1 - 1e-9:
        raise ConfigError(
            f"impossible balance constraints on {what}: minimum shares sum to "
            f"{lower.sum():.3g} and maximum shares to {upper.sum():.3g} over the groups the "
            f"speaker pool has; they must allow a total of 1"
        )
    fixed = np.full(base.size, np.nan)
    for _ in range(base.size + 1):
        free = np.isnan(fixed)
        rest = 1.0 - np.nansum(fixed)
        share = fixed.copy()
        weights = base[free]
        share[free] = rest * weights / weights.sum() if weights.sum() > 0 else rest / free.sum()
        low, high = share < lower - 1e-12, share > upper + 1e-12
        if not (low | high).any():
            return share
        fixed[low] = lower[low]
        fixed[high] = upper[high]
        if not np.isnan(fixed).any():
            if abs(fixed.sum() - 1) > 1e-9:
                raise ConfigError(f"impossible balance constraints on {what}")
            return fixed
    raise ConfigError(f"impossible balance constraints on {what}")


def group_targets(
    codes: np.ndarray, values: Sequence[str], attribute: str, balance: BalanceConfig
) -> np.ndarray | None:
    """Target share of each group of ``attribute`` (None: the attribute is not balanced)."""
    constraints = [c for c in balance.constraints if c.attribute == attribute]
    if attribute not in balance.by and not constraints:
        return None
    counts = np.bincount(codes, minlength=len(values)).astype(np.float64)
    base = np.ones(len(values)) if attribute in balance.by else counts
    lower, upper = np.zeros(len(values)), np.ones(len(values))
    index = {v: i for i, v in enumerate(values)}
    for c in constraints:
        if c.value not in index:
            if c.min_share > 0:
                raise ConfigError(
                    f"impossible balance constraint: {attribute}={c.value!r} needs at least "
                    f"{c.min_share:.0%} of the items but no speaker of the pool has it "
                    f"(the pool has {attribute} {sorted(values)})"
                )
            continue
        lower[index[c.value]], upper[index[c.value]] = c.min_share, c.max_share
    return water_fill(base, lower, upper, attribute)


def rake(codes: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Weights of ``n`` speakers whose group shares match ``targets`` (raking; sums to 1)."""
    w = np.full(n, 1.0 / n)
    for _ in range(RAKE_ROUNDS):
        worst = 0.0
        for attr, target in targets.items():
            share = np.bincount(codes[attr], weights=w, minlength=target.size)
            scale = np.divide(target, share, out=np.zeros_like(target), where=share > 0)
            w = w * scale[codes[attr]]
            w /= w.sum()
            worst = max(worst, float(np.abs(share - target).max()))
        if worst < 1e-6:
            break
    return w


def encode(values: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Integer codes of ``values`` and the distinct values (sorted)."""
    uniques, codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


def speaker_weights(
    attributes: Mapping[str, Sequence[str]], balance: BalanceConfig
) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """Raked weights of one cell's speakers and the target share of every balanced group."""
    n = len(next(iter(attributes.values())))
    codes, targets, shown = {}, {}, {}
    for attr, values in attributes.items():
        codes[attr], uniques = encode(values)
        target = group_targets(codes[attr], uniques, attr, balance)
        if target is not None:
            targets[attr] = target
            shown[attr] = dict(zip(uniques, target.tolist(), strict=True))
    return rake(codes, targets, n), shown


def interleave(counts: np.ndarray) -> np.ndarray:
    """Indices of groups with ``counts`` items, spread evenly: group g's j-th item sorts at
    ``(j + 0.5) / counts[g]``, so every run of the sequence holds each group in proportion."""
    groups = np.repeat(np.arange(counts.size), counts)
    if groups.size == 0:
        return groups
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.arange(groups.size) - starts
    keys = (rank + 0.5) / counts[groups]
    return groups[np.lexsort((groups, keys))]


def cycle_texts(n_items: int, n_texts: int, rng: np.random.Generator) -> np.ndarray:
    """Text indices for ``n_items`` items cycling through a permutation of ``n_texts`` texts."""
    if n_items == 0:
        return np.zeros(0, dtype=np.int64)
    order = rng.permutation(n_texts)
    return order[np.arange(n_items) % n_texts]
