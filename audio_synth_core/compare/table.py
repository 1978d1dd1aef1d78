"""The comparison table: which metrics are compared (and which way is better), each candidate's
mean with a bootstrap CI, and its paired difference versus a reference candidate; plus the
per-candidate statistics the promotion gates look at.

Pure functions over one metrics DataFrame per candidate (one row per prompt, ``evaluate_candidate``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from audio_synth_core.assessment.assess import count_flagged
from audio_synth_core.assessment.bootstrap import bootstrap_means, percentile_ci
from audio_synth_core.assessment.fairness import (
    fairness_report,
    flatten_attributes,
    passed_flags,
)
from audio_synth_core.config.models import ValidationConfig
from audio_synth_core.plugins import registry as plugins
from audio_synth_core.store import schema
from audio_synth_core.store.serialize import json_safe as _json_safe
from audio_synth_core.validators.base import Direction, registered_fields

if TYPE_CHECKING:
    from audio_synth_core.config.compare import CompareConfig

PASS_RATE = "pass_rate"
# Which way is better for metrics no validator declares; a validator's metrics carry their own
# ``MetricField.direction``.
_UNDECLARED_DIRECTIONS: dict[str, Direction] = {PASS_RATE: "higher"}
# Measured, but about the measuring (ASR speed), not the audio: left out of the default table.
_NOT_COMPARED = {"asr_rtf"}

TABLE_COLUMNS = [
    "candidate",
    "metric",
    "n",
    "mean",
    "ci_low",
    "ci_high",
    "reference",
    "n_paired",
    "diff_mean",
    "diff_ci_low",
    "diff_ci_high",
]


# ----------------------------------------------------------------------------- metric selection


def metric_direction(name: str) -> Direction | None:
    """Which way is better for ``name``: as its validator declares it, else None (unknown)."""
    declared = registered_fields().get(name)
    if declared is not None:
        return declared.direction
    return _UNDECLARED_DIRECTIONS.get(name)


def measured_metrics(validation: ValidationConfig) -> list[str]:
    """Numeric metric names the configured validators write, in their order, then ``pass_rate``."""
    names: list[str] = []
    for spec in validation.validators:
        cls = plugins.load(plugins.VALIDATORS, spec.name)
        names += [
            f.name
            for f in cls.fields
            if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)
        ]
    return list(dict.fromkeys([*names, PASS_RATE]))


def table_metrics(cfg: CompareConfig, frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """Metrics of the comparison table: the decision metric, then ``report_metrics`` (default:
    every numeric metric some candidate measured), then ``pass_rate``."""
    if cfg.report_metrics is not None:
        rest = list(cfg.report_metrics)
    else:
        rest = [
            m
            for m in measured_metrics(cfg.validation)
            if m not in _NOT_COMPARED
            and any(m in f.columns and f[m].notna().any() for f in frames.values())
        ]
    return list(dict.fromkeys([cfg.metric.name, *rest, PASS_RATE]))


# ----------------------------------------------------------------------------- the table


def _metric_values(frame: pd.DataFrame, metric: str) -> pd.Series:
    if metric == PASS_RATE:
        # Failed items count as not passed: a candidate must not gain by failing to synthesize.
        return pd.Series(passed_flags(frame["passed"]), index=frame.index, dtype=float)
    if metric not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[metric].astype(object), errors="coerce").astype(float)


def compare_table(
    frames: Mapping[str, pd.DataFrame],
    metrics: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    *,
    reference: str | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean and bootstrap CI of each metric per candidate, and the paired difference
    (candidate - reference, per prompt) with its CI. One row per (candidate, metric).

    Frames are joined on ``prompt_id``; a prompt missing a value in either candidate is left out
    of that pair (``n_paired``). ``pass_rate`` is the share of prompts with ``passed``. Every
    column is resampled with the same per-prompt weights, which is what makes the test paired.
    """
    labels = list(frames)
    if not labels:
        raise ValueError("compare_table needs at least one candidate")
    reference = reference or labels[0]
    if reference not in frames:
        raise ValueError(f"reference {reference!r} is not a candidate ({', '.join(labels)})")
    metrics = list(dict.fromkeys(metrics))
    ids = list(dict.fromkeys(pid for f in frames.values() for pid in f["prompt_id"]))
    columns: list[np.ndarray] = []
    keys: list[tuple[str, str, str]] = []  # (kind, candidate, metric)
    values: dict[tuple[str, str], np.ndarray] = {}
    for label, frame in frames.items():
        indexed = frame.set_index("prompt_id")
        for m in metrics:
            x = _metric_values(indexed, m).reindex(ids).to_numpy(dtype=np.float64)
            values[label, m] = x
            columns.append(x)
            keys.append(("mean", label, m))
    for label in labels:
        if label == reference:
            continue
        for m in metrics:
            columns.append(values[label, m] - values[reference, m])  # NaN unless both measured
            keys.append(("diff", label, m))
    matrix = np.column_stack(columns) if columns else np.empty((len(ids), 0))
    boot = bootstrap_means(matrix, n_boot, np.random.default_rng(seed))
    stats: dict[tuple[str, str, str], tuple[int, float | None, float | None, float | None]] = {}
    for j, key in enumerate(keys):
        col = matrix[:, j]
        n = int((~np.isnan(col)).sum())
        mean = float(np.nanmean(col)) if n else None
        lo, hi = percentile_ci(boot[:, j], confidence) if n >= 2 else (None, None)
        stats[key] = (n, mean, lo, hi)
    rows = []
    for label in labels:
        for m in metrics:
            n, mean, lo, hi = stats["mean", label, m]
            dn, dm, dlo, dhi = stats.get(("diff", label, m), (None, None, None, None))
            rows.append([label, m, n, mean, lo, hi, reference, dn, dm, dlo, dhi])
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for c in ("mean", "ci_low", "ci_high", "diff_mean", "diff_ci_low", "diff_ci_high"):
        table[c] = table[c].astype(float)
    table["n_paired"] = table["n_paired"].astype("Int64")
    return table


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows of a comparison table (NaN -> None)."""
    return [_json_safe(r) for r in table.astype(object).to_dict(orient="records")]


# ----------------------------------------------------------------------------- gate statistics


@dataclass(frozen=True)
class GateStats:
    """What the promotion gates look at, for one candidate."""

    n_items: int
    n_failed: int
    pass_rate: float
    privacy_flags: int
    four_fifths_flags: tuple[str, ...] = ()
    parity_attributes: tuple[str, ...] = ()  # attributes whose pass-rate parity could be computed


def gate_stats(
    frame: pd.DataFrame, attributes: Sequence[str] | None = None, n_boot: int = 200, seed: int = 0
) -> GateStats:
    """Pass rate, generation failures, privacy flags and four-fifths flags of one candidate.

    ``attributes`` default to the prompt attributes with two or more values.
    """
    df = flatten_attributes(frame)
    if attributes is None:
        keys = {
            k
            for a in frame.get("attributes", pd.Series(dtype=object)).dropna()
            for k in json.loads(a)
        }
        attributes = sorted(k for k in keys if k in df.columns and df[k].nunique(dropna=True) >= 2)
    flags: tuple[str, ...] = ()
    evaluated: tuple[str, ...] = ()
    present = [a for a in attributes if a in df.columns]
    if present and len(df):
        report = fairness_report(df, present, [], n_boot=n_boot, seed=seed)
        flags = tuple(f for f in report.flags if f.startswith("four-fifths"))
        evaluated = tuple(
            a
            for a, r in report.attributes.items()
            if r.pass_rate is not None and r.pass_rate.ratio is not None
        )
    n = len(df)
    return GateStats(
        n_items=n,
        n_failed=int((df["status"] != schema.STATUS_OK).sum()) if "status" in df.columns else 0,
        pass_rate=float(df["passed"].fillna(False).astype(bool).mean()) if n else 0.0,
        privacy_flags=count_flagged(df),
        four_fifths_flags=flags,
        parity_attributes=evaluated,
    )
