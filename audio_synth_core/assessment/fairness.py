"""Fairness of a run: every metric broken down by voice attributes, pass-rate parity, coverage.

Pure functions over the item-metadata DataFrame (one row per item), which only ever become
numeric arrays and a group code per row and attribute: the same memory at any run size whether
the attributes are strings or categoricals (``assessment.run_table``). Group means and counts
are weighted ``bincount`` sums over the codes; the four-fifths ratio is fairlearn's
``demographic_parity_ratio`` over the (group, passed) counts as sample weights (fairlearn's
``MetricFrame`` holds a Python object per row, too much at a million rows). 95% confidence
intervals come from the Poisson bootstrap of ``assessment.bootstrap``, which resamples every
group of every attribute from ONE weight matrix, so the cost is one ``n_boot x n_rows`` draw
plus small matrix products, not a Python loop per replicate and group.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audio_synth_core.assessment.bootstrap import bootstrap_group_means, percentile_ci
from audio_synth_core.store.serialize import json_safe as _json_safe

UNKNOWN = "unknown"
FOUR_FIFTHS = 0.8
MIN_GROUP_N = 5


@dataclass
class GroupStat:
    """One group's estimate: n non-null values, mean (or rate) and its bootstrap 95% CI."""

    group: str
    n: int
    mean: float | None
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass
class PassRateParity:
    """Pass rate by group and the four-fifths rule (min rate / max rate < 0.8 is flagged)."""

    groups: list[GroupStat]
    ratio: float | None
    flagged: bool
    min_group: str | None = None
    max_group: str | None = None
    below_groups: list[str] = field(default_factory=list)  # rate < 0.8 x the best group's rate
    excluded_small_groups: list[str] = field(default_factory=list)


@dataclass
class Coverage:
    """How evenly an attribute's groups are represented."""

    counts: dict[str, int]
    shares: dict[str, float]
    normalized_entropy: float | None  # 1.0 = perfectly even (known groups only)
    max_min_ratio: float | None
    min_share: float
    under_represented: list[str]
    unknown_share: float
    flagged: bool


@dataclass
class AttributeFairness:
    attribute: str
    metrics: dict[str, list[GroupStat]]
    pass_rate: PassRateParity | None
    coverage: Coverage


@dataclass
class FairnessReport:
    """Run-level fairness report; ``to_dict()`` is JSON-serializable (NaN becomes None)."""

    n_items: int
    n_boot: int
    seed: int
    confidence: float
    attributes: dict[str, AttributeFairness]
    skipped: dict[str, str]  # attribute -> why it was not analysed
    flags: list[str]  # human-readable findings (four-fifths violations, coverage imbalance)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def flatten_attributes(df: pd.DataFrame, column: str = "attributes") -> pd.DataFrame:
    """Copy of ``df`` with the keys of its JSON ``attributes`` column as columns.

    Existing columns win (e.g. top-level ``language``) except where they are null and the JSON
    has a value. Unparseable or non-object JSON is ignored: bad metadata must not break a report.
    """
    out = df.copy()
    if column not in out.columns:
        return out

    def parse(v: Any) -> dict[str, Any]:
        if isinstance(v, Mapping):
            return dict(v)
        if not isinstance(v, str) or not v:
            return {}
        try:
            d = json.loads(v)
        except ValueError:
            return {}
        return d if isinstance(d, dict) else {}

    parsed = pd.DataFrame.from_records([parse(v) for v in out[column]], index=out.index)
    for key in parsed.columns:
        vals = parsed[key].map(
            lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v
        )
        if key in out.columns:
            out[key] = out[key].where(out[key].notna(), vals)
        else:
            out[key] = vals
    return out


def _group_labels(s: pd.Series) -> pd.Series:
    """Attribute values as strings; missing or blank values form the "unknown" group."""
    labels = s.astype(object).where(s.notna(), UNKNOWN).astype(str).str.strip()
    return labels.where(labels != "", UNKNOWN)


def _group_codes(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """The group of each row as a code into the sorted group names, and those names.

    A categorical column is labelled through its categories (a few strings, whatever the row
    count); any other column value by value, as ``_group_labels``."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = _group_labels(s).astype("category")
    names = [*_group_labels(pd.Series(s.cat.categories, dtype=object)), UNKNOWN]  # code -1: null
    codes = s.cat.codes.to_numpy().astype(np.int64)
    groups = sorted({names[c] for c in np.unique(codes)})
    index = {g: i for i, g in enumerate(groups)}
    return np.array([index.get(name, -1) for name in names])[codes], groups


def _numeric(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(s.astype(object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )


def passed_flags(s: pd.Series) -> np.ndarray:
    """The ``passed`` verdicts as bools; a missing verdict (e.g. an item that failed generation)
    counts as not passed."""
    if isinstance(s.dtype, pd.BooleanDtype) or s.dtype == bool:
        return s.to_numpy(dtype=bool, na_value=False)
    return s.astype(object).where(s.notna(), False).astype(bool).to_numpy()


def _by_group(values: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Means and non-null counts of every column by group, each of shape (k, n_cols)."""
    n_cols = values.shape[1]
    sums, counts = np.zeros((k, n_cols)), np.zeros((k, n_cols))
    for j in range(n_cols):
        present = ~np.isnan(values[:, j])
        counts[:, j] = np.bincount(codes, weights=present, minlength=k)
        sums[:, j] = np.bincount(codes[present], weights=values[present, j], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan), counts


def _group_stats(
    means: np.ndarray,
    counts: np.ndarray,
    j: int,
    groups: list[str],
    boot: np.ndarray,
    confidence: float,
    min_group_n: int,
) -> list[GroupStat]:
    stats = []
    for gi, g in enumerate(groups):
        n = int(counts[gi, j])
        if n == 0:
            stats.append(GroupStat(group=g, n=0, mean=None))
            continue
        lo, hi = percentile_ci(boot[:, gi, j], confidence) if n >= min_group_n else (None, None)
        stats.append(GroupStat(g, n, float(means[gi, j]), lo, hi))
    return stats


def _parity_ratio(
    passed: np.ndarray, codes: np.ndarray, eligible: list[int], groups: list[str]
) -> float:
    """fairlearn's demographic parity ratio (lowest / highest pass rate) of the ``eligible``
    groups, computed over their (group, passed) cells weighted by item counts: 2 rows a group."""
    from fairlearn.metrics import demographic_parity_ratio

    k = len(groups)
    cells = np.bincount(codes * 2 + passed, minlength=2 * k).reshape(k, 2)[eligible]
    outcome = np.tile([0, 1], len(eligible))
    group = np.repeat([groups[g] for g in eligible], 2)
    weight = cells.ravel()
    keep = weight > 0
    return float(
        demographic_parity_ratio(
            outcome[keep],
            outcome[keep],
            sensitive_features=pd.Series(group[keep], name="group"),
            sample_weight=weight[keep],
        )
    )


def _pass_rate_parity(
    passed: np.ndarray,
    codes: np.ndarray,
    groups: list[str],
    stats: list[GroupStat],
    min_group_n: int,
    threshold: float,
) -> PassRateParity:
    small = [s.group for s in stats if s.n < min_group_n]
    # Groups too small to say anything are reported but kept out of the ratio: 0 of 2 passing
    # must not flag a whole run.
    eligible = [s for s in stats if s.n >= min_group_n]
    if len(eligible) < 2:
        return PassRateParity(stats, None, False, excluded_small_groups=small)
    best = max(eligible, key=lambda s: s.mean or 0.0)
    worst = min(eligible, key=lambda s: s.mean or 0.0)
    if not best.mean:  # nobody passes anywhere: a quality problem, not a disparity
        return PassRateParity(stats, None, False, worst.group, best.group, [], small)
    ratio = _parity_ratio(passed, codes, [groups.index(s.group) for s in eligible], groups)
    below = [s.group for s in eligible if (s.mean or 0.0) < threshold * best.mean]
    return PassRateParity(
        stats, ratio, ratio < threshold, worst.group, best.group, sorted(below), small
    )


def _coverage(codes: np.ndarray, groups: list[str], min_share: float | None) -> Coverage:
    counts = pd.Series(np.bincount(codes, minlength=len(groups)), index=groups)
    total = int(counts.sum())
    known = counts.drop(UNKNOWN, errors="ignore")
    shares = {str(k): float(v / total) for k, v in counts.items()}
    k = len(known)
    limit = min_share if min_share is not None else (0.5 / k if k else 0.0)
    if k >= 2:
        p = known.to_numpy(dtype=np.float64) / known.sum()
        entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum() / np.log(k))
        max_min = float(known.max() / known.min())
        under = sorted(str(g) for g, v in known.items() if v / known.sum() < limit)
    else:
        entropy, max_min, under = None, None, []
    return Coverage(
        counts={str(g): int(v) for g, v in counts.items()},
        shares=shares,
        normalized_entropy=entropy,
        max_min_ratio=max_min,
        min_share=float(limit),
        under_represented=under,
        unknown_share=float(counts.get(UNKNOWN, 0) / total) if total else 0.0,
        flagged=bool(under),
    )


def fairness_report(
    df: pd.DataFrame,
    attributes: list[str],
    metrics: list[str],
    n_boot: int = 1000,
    seed: int = 0,
    *,
    confidence: float = 0.95,
    min_group_n: int = MIN_GROUP_N,
    four_fifths: float = FOUR_FIFTHS,
    min_share: float | None = None,
) -> FairnessReport:
    """Metrics and pass rate by group for each attribute, with bootstrap CIs and parity flags.

    ``df`` holds one row per item; attribute columns may come from ``flatten_attributes``.
    Attributes that are absent or have fewer than 2 groups (after missing -> "unknown") are listed
    in ``skipped``. Metrics that are absent or not numeric are ignored. ``min_share`` is the
    coverage share below which a known group is flagged (default: half of an even share).
    """
    n = len(df)
    metric_cols = [m for m in dict.fromkeys(metrics) if m in df.columns and _is_numeric(df[m])]
    passed = passed_flags(df["passed"]) if "passed" in df.columns else None
    columns = [_numeric(df[m]) for m in metric_cols]
    if passed is not None:
        columns.append(passed.astype(np.float64))
    values = np.column_stack(columns) if columns else np.empty((n, 0))

    report = FairnessReport(n, n_boot, seed, confidence, {}, {}, [])
    prepared: dict[str, tuple[np.ndarray, list[str]]] = {}
    for attr in dict.fromkeys(attributes):
        if attr not in df.columns:
            report.skipped[attr] = "column not present"
            continue
        codes, groups = _group_codes(df[attr])
        if len(groups) < 2:
            report.skipped[attr] = f"only one group ({groups[0] if groups else 'none'})"
            continue
        prepared[attr] = (codes, groups)
    if not prepared:
        return report

    boots = bootstrap_group_means(
        values,
        {a: (c, len(g)) for a, (c, g) in prepared.items()},
        n_boot,
        np.random.default_rng(seed),
    )
    for attr, (codes, groups) in prepared.items():
        means, counts = _by_group(values, codes, len(groups))
        boot = boots[attr]
        per_metric = {
            m: _group_stats(means, counts, j, groups, boot, confidence, min_group_n)
            for j, m in enumerate(metric_cols)
        }
        parity = None
        if passed is not None:
            j = len(metric_cols)
            rates = _group_stats(means, counts, j, groups, boot, confidence, min_group_n)
            parity = _pass_rate_parity(passed, codes, groups, rates, min_group_n, four_fifths)
            if parity.flagged:
                report.flags.append(
                    f"four-fifths rule: {attr} pass rate of {', '.join(parity.below_groups)} "
                    f"is below {four_fifths:.0%} of {parity.max_group} (ratio {parity.ratio:.2f})"
                )
        coverage = _coverage(codes, groups, min_share)
        if coverage.flagged:
            report.flags.append(
                f"coverage: {attr} groups {', '.join(coverage.under_represented)} are under "
                f"{coverage.min_share:.0%} of known items"
            )
        report.attributes[attr] = AttributeFairness(attr, per_metric, parity, coverage)
    return report


def _is_numeric(s: pd.Series) -> bool:
    # Booleans count (a rate); so do object columns holding numbers (e.g. nullable floats).
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return True
    return bool(np.isfinite(_numeric(s)).any())


def metric_columns(df: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Numeric metric columns of ``df``: validator metrics and level stats, not ids or counters."""
    skip = set(exclude) | _NOT_METRICS
    return [
        c
        for c in df.columns
        if c not in skip
        and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]


# Numeric schema columns that describe an item rather than measure its quality.
_NOT_METRICS = {"chunk_index", "seed", "sample_rate_hz", "num_samples", "passed"}
