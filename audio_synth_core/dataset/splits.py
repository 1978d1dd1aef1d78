"""Leak-free train/dev/test splits, deterministic from the seed, and the check that proves them.

Assignment happens at plan time, before texts are paired with speakers, so an item only ever pairs
a text and a speaker of the same split:

- speakers (when ``speaker`` is in ``disjoint_by``): sorted by their group (language, gender,
  accent) and then by a seeded hash, and dealt split labels from an evenly interleaved sequence of
  largest-remainder counts, so each split gets its share of speakers and of every group;
- texts (when ``text`` or ``source`` is): the unit is the source document (``source``) or the
  normalized text (``text`` only); units are ordered by a seeded hash and cut into blocks of
  largest-remainder size. Texts are de-duplicated across documents before (``texts.py``), so a
  document unit never shares a text with another split.

Every non-empty split gets at least one unit of each kind; too few units is a clear error.

The leak check hashes speaker ids, normalized texts and documents and counts, for every pair of
splits, the hashes they share. A run fails on any non-zero count of a ``disjoint_by`` dimension.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from audio_synth_core.config.dataset import SPLITS, SplitConfig
from audio_synth_core.dataset.balance import interleave, largest_remainder
from audio_synth_core.dataset.texts import normalize_for_match
from audio_synth_core.errors import AudioSynthError, ConfigError
from audio_synth_core.store import ids


class LeakError(AudioSynthError):
    """Splits share speakers, texts or documents they must not share."""


def active_splits(cfg: SplitConfig) -> list[str]:
    """Split names with a ratio above 0, in train/dev/test order."""
    return [s for s in SPLITS if cfg.ratios.get(s, 0) > 0]


def split_sizes(total: int, cfg: SplitConfig, minimum: int = 0, what: str = "items") -> np.ndarray:
    """Counts per active split (largest remainder), each at least ``minimum``."""
    names = active_splits(cfg)
    if total < minimum * len(names):
        raise ConfigError(
            f"splits: {total} {what} cannot fill {len(names)} splits ({', '.join(names)}) with "
            f"at least {minimum} each; add {what} or drop a split"
        )
    ratios = np.array([cfg.ratios[s] for s in names])
    counts = largest_remainder(total, ratios)
    # Move units from the largest split to any split under the minimum.
    while (counts < minimum).any():
        counts[int(np.argmax(counts))] -= 1
        counts[int(np.argmin(counts))] += 1
    return counts


def _hash_order(keys: Sequence[str], seed: int, salt: str) -> np.ndarray:
    digests = [hashlib.sha256(f"{seed}|{salt}|{k}".encode()).digest()[:8] for k in keys]
    values = np.frombuffer(b"".join(digests), dtype=">u8") if digests else np.zeros(0, np.uint64)
    return np.argsort(values, kind="stable")


def assign_units(keys: Sequence[str], cfg: SplitConfig, seed: int, what: str) -> np.ndarray:
    """Split index (into ``active_splits``) of each distinct unit key: seeded blocks."""
    distinct = sorted(set(keys))
    counts = split_sizes(len(distinct), cfg, minimum=1, what=what)
    labels = np.repeat(np.arange(counts.size), counts)
    by_key = dict(
        zip((distinct[i] for i in _hash_order(distinct, seed, what)), labels, strict=True)
    )
    return np.array([by_key[k] for k in keys], dtype=np.int64)


def assign_speakers(
    speaker_ids: Sequence[str], groups: Sequence[str], cfg: SplitConfig, seed: int
) -> np.ndarray:
    """Split index of each speaker: stratified by ``groups``, spread by ``interleave``."""
    n = len(speaker_ids)
    counts = split_sizes(n, cfg, minimum=1, what="speakers")
    hashed = _hash_order(list(speaker_ids), seed, "speakers")
    rank = np.empty(n, dtype=np.int64)
    rank[hashed] = np.arange(n)
    _, group_codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    order = np.lexsort((rank, group_codes))
    out = np.empty(n, dtype=np.int64)
    out[order] = interleave(counts)
    return out


def hashed(values: pd.Series) -> pd.Series:
    """Short hashes of the non-empty values (what the report shows instead of the values)."""
    return values.dropna().astype(str).loc[lambda s: s != ""].map(lambda v: ids.digest(v)[:16])


def leak_check(items: pd.DataFrame) -> dict[str, Any]:
    """Overlap counts of hashed speaker ids, normalized texts and source documents between every
    pair of splits in ``items`` (columns ``split``, ``speaker_id``, ``text``, ``source_doc``)."""
    columns = {
        "speaker": items["speaker_id"],
        "text": items["text"].fillna("").map(normalize_for_match),
        "source": items["source_doc"],
    }
    out: dict[str, Any] = {"pairs": {}, "totals": {}}
    present = [s for s in SPLITS if (items["split"] == s).any()]
    sets = {
        dim: {s: set(hashed(col[items["split"] == s])) for s in present}
        for dim, col in columns.items()
    }
    for dim in columns:
        total = 0
        for a, b in combinations(present, 2):
            n = len(sets[dim][a] & sets[dim][b])
            out["pairs"][f"{dim}:{a}/{b}"] = n
            total += n
        out["totals"][dim] = total
    out["distinct"] = {dim: {s: len(v) for s, v in by.items()} for dim, by in sets.items()}
    return out


def require_no_leak(check: Mapping[str, Any], disjoint_by: Sequence[str]) -> None:
    """Raise LeakError naming the overlaps of any dimension the spec keeps disjoint."""
    bad = {d: check["totals"][d] for d in disjoint_by if check["totals"].get(d, 0)}
    if bad:
        pairs = {k: v for k, v in check["pairs"].items() if v and k.split(":")[0] in bad}
        raise LeakError(f"splits leak: shared {bad} between splits ({pairs})")
