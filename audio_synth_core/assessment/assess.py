"""Run-level assessment: items + validation -> fairness, data contract, gate verdict, report.

Pure functions over a DataFrame, plus ``write_reports`` (the one side effect, at the edge). A
stored run is assessed from its bounded run table (``assess_stored``: numbers and labels, read
part by part, ``assessment.run_table``); rows already in memory, from their frame (``assess``).
What is known about a metric or a check comes from the validators (``MetricField``,
``flag_checks``, ``report_section``), never from names written here.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audio_synth_core.assessment.contract import ContractResult, check_contract
from audio_synth_core.assessment.fairness import (
    FairnessReport,
    fairness_report,
    flatten_attributes,
    metric_columns,
    passed_flags,
)
from audio_synth_core.assessment.run_table import RunTable, located, read_run
from audio_synth_core.config.models import ValidationConfig
from audio_synth_core.reporting.run_report import build_report, check_counts, write_report
from audio_synth_core.store import layout, schema
from audio_synth_core.store.storage import Store, read_uri
from audio_synth_core.validators.base import (
    build_validator,
    registered_fields,
    registered_flag_checks,
)

# Attributes worth a breakdown when the catalog or voice table provides them.
DEFAULT_ATTRIBUTES = ("gender", "age_band", "accent", "language", "voice", "category", "speaker")


@dataclass
class Assessment:
    summary: dict[str, Any]
    fairness: FairnessReport | None
    contract: ContractResult | None
    gate_passed: bool
    gate_reasons: list[str] = field(default_factory=list)


def _attributes(df: pd.DataFrame, cfg: ValidationConfig) -> list[str]:
    if cfg.fairness_attributes is not None:
        return [a for a in cfg.fairness_attributes if a in df.columns]
    return [a for a in DEFAULT_ATTRIBUTES if a in df.columns and df[a].nunique(dropna=True) >= 2]


def assess(
    df: pd.DataFrame, cfg: ValidationConfig, docs_dir: str | None, run_id: str
) -> Assessment:
    """Fairness breakdowns, data contract and the gate verdict of one run's rows in ``df``."""
    df = flatten_attributes(df) if "attributes" in df.columns else df
    contract = check_contract(df, docs_dir, max_duration_s=cfg.max_duration_s)
    return judge(df, contract, cfg, run_id)


def assess_stored(
    store: Store, run_id: str, cfg: ValidationConfig, docs_dir: str | None
) -> tuple[RunTable, Assessment]:
    """``assess`` of a stored run, read part by part: its bounded table and its assessment."""
    keep = cfg.fairness_attributes if cfg.fairness_attributes is not None else DEFAULT_ATTRIBUTES
    table, contract = read_run(store, run_id, docs_dir, cfg.max_duration_s, keep_labels=list(keep))
    return table, judge(table.frame, contract, cfg, run_id)


def judge(
    df: pd.DataFrame, contract: ContractResult, cfg: ValidationConfig, run_id: str
) -> Assessment:
    """Summary, fairness and the gate verdict, given the contract's result. ``df`` has one row
    per item, attributes flattened; numbers and labels are all it reads (a bounded run table's
    frame will do)."""
    n = len(df)
    passed = passed_flags(df["passed"]) if "passed" in df.columns else None
    pass_rate = float(passed.mean()) if passed is not None and n else None
    summary: dict[str, Any] = {
        "run_id": run_id,
        "items": n,
        "items_ok": int((df["status"] == schema.STATUS_OK).sum()) if "status" in df.columns else n,
        "pass_rate": pass_rate,
        "quarantined": int(df["quarantined"].fillna(False).sum())
        if "quarantined" in df.columns
        else 0,
    }
    if "failed_checks" in df.columns:
        summary["failed_checks"] = check_counts(df["failed_checks"], once_per_item=False)
    flagged_privacy = count_flagged(df)
    summary["privacy_flags"] = flagged_privacy
    attrs = _attributes(df, cfg)
    metrics = [m for m in metric_columns(df) if df[m].notna().any()]
    fairness = fairness_report(df, attrs, metrics, n_boot=cfg.n_boot) if attrs else None

    reasons: list[str] = []
    gate = cfg.gate
    if pass_rate is not None and pass_rate < gate.min_pass_rate:
        reasons.append(
            f"pass rate {pass_rate:.3f} is below the gate's minimum {gate.min_pass_rate:.3f}"
        )
    if not contract.success:
        failed = ", ".join(sorted({r.expectation for r in contract.failed}))
        text = f"data contract failed: {failed}"
        reasons.append(text) if gate.contract == "fail" else summary.setdefault(
            "warnings", []
        ).append(text)
    if fairness is not None:
        parity = [f for f in fairness.flags if f.startswith("four-fifths")]
        for flag in parity:
            reasons.append(flag) if gate.fairness == "fail" else summary.setdefault(
                "warnings", []
            ).append(flag)
        for flag in fairness.flags:
            if flag not in parity:
                summary.setdefault("warnings", []).append(flag)
    if gate.max_privacy_flags is not None and flagged_privacy > gate.max_privacy_flags:
        reasons.append(
            f"{flagged_privacy} items resemble a protected speaker (allowed: {gate.max_privacy_flags})"
        )
    summary["gate_passed"] = not reasons
    summary["gate_reasons"] = reasons
    return Assessment(summary, fairness, contract, not reasons, reasons)


def count_flagged(df: pd.DataFrame) -> int:
    """Items that failed a check some validator declares in ``flag_checks`` (privacy risks).

    Counted over the distinct values of ``failed_checks`` (few, whatever the row count)."""
    if "failed_checks" not in df.columns:
        return 0
    flags = registered_flag_checks()
    return sum(
        int(k)
        for value, k in df["failed_checks"].value_counts(dropna=True).items()
        if not flags.isdisjoint(n.strip() for n in str(value).split(","))
    )


def sample_ranking(df: pd.DataFrame) -> tuple[str, bool] | None:
    """The metric that ranks report samples, and whether its low values are the bad ones.

    The present metric (with values) of the lowest ``sample_priority``; worst first by its
    ``direction``, lowest values first when it has none. None: no such metric in ``df``.
    """
    candidates = sorted(
        (f.sample_priority, f.name, f.direction)
        for f in registered_fields().values()
        if f.sample_priority is not None and f.name in df.columns and df[f.name].notna().any()
    )
    if not candidates:
        return None
    _, name, direction = candidates[0]
    return name, direction != "lower"


def rank_samples(
    df: pd.DataFrame, n: int, found: np.ndarray
) -> tuple[list[tuple[str, int]], str | None]:
    """(label, row position) of the worst and best ok items whose audio is ``found`` (by
    pass/fail, then by ``sample_ranking``), and the metric that ranked them.

    Reads only ``status``, ``passed`` and the ranking metrics: a bounded run table will do."""
    positions = np.flatnonzero((df["status"] == schema.STATUS_OK).to_numpy(dtype=bool) & found)
    if n == 0 or not positions.size:
        return [], None
    ranked_by = [
        f.name
        for f in registered_fields().values()
        if f.sample_priority is not None and f.name in df.columns
    ]
    ok = df[[c for c in ("passed", *ranked_by) if c in df.columns]].iloc[positions]
    ok.index = positions
    ranking = sample_ranking(ok)
    ok = ok.assign(_passed=passed_flags(ok["passed"]) if "passed" in ok.columns else True)
    key, ascending = ["_passed"], [True]
    if ranking:
        key.append(ranking[0])
        ascending.append(ranking[1])
    ranked = ok.sort_values(key, ascending=ascending, na_position="first").index
    half = max(1, n // 2)
    chosen = [("worst", int(p)) for p in ranked[:half]]
    chosen += [("best", int(p)) for p in ranked[::-1][: max(0, n - half)]]
    return chosen, ranking[0] if ranking else None


def load_samples(
    rows: pd.DataFrame,
    labels: list[str],
    score_col: str | None,
    storage_options: dict[str, Any] | None = None,
    store: Store | None = None,
) -> list[dict]:
    """The audio of ``rows`` (whole item rows, labelled), skipping what cannot be read."""
    samples, seen = [], set()
    for label, row in zip(labels, rows.itertuples(), strict=True):
        if row.id in seen:
            continue
        seen.add(row.id)
        own = getattr(row, "audio_path", None) if store is not None else None
        own = own if isinstance(own, str) and own else None  # null reads back as NaN
        try:
            data = store.read_bytes(own) if own else read_uri(row.audio_uri, storage_options)
        except OSError:
            continue
        fmt = "flac" if str(own or row.audio_uri).endswith(".flac") else "wav"
        metrics = {
            c: getattr(row, c)
            for c in ("duration_s", "rms_dbfs", score_col)
            if c and hasattr(row, c)
        }
        samples.append(
            {
                "id": row.id,
                "label": label,
                "audio_bytes": data,
                "mime": f"audio/{fmt}",
                "metrics": metrics,
            }
        )
    return samples


def pick_samples(
    df: pd.DataFrame,
    n: int,
    storage_options: dict[str, Any] | None = None,
    store: Store | None = None,
) -> list[dict]:
    """Audio of the worst and best items (by pass/fail, then by ``sample_ranking``).

    An item's ``audio_path`` is read under ``store`` (the output root as opened now, with its own
    credentials); without one, ``audio_uri`` with ``storage_options`` (audio outside the output)."""
    if n == 0 or "audio_uri" not in df.columns:
        return []
    found = located(df) if store is not None else df["audio_uri"].notna().to_numpy(dtype=bool)
    chosen, score_col = rank_samples(df, n, found)
    rows = df.iloc[[p for _, p in chosen]]
    return load_samples(rows, [label for label, _ in chosen], score_col, storage_options, store)


def validator_sections(df: pd.DataFrame, cfg: ValidationConfig) -> list[tuple[str, str]]:
    """The run report's sections contributed by the configured validators, in config order."""
    validators = [build_validator(spec.name, spec.params) for spec in cfg.validators]
    return [section for v in validators if (section := v.report_section(df)) is not None]


def write_reports(
    store: Store,
    run_id: str,
    items: pd.DataFrame | RunTable,
    assessment: Assessment,
    cfg: ValidationConfig,
    docs_dir: str,
    audio_storage_options: dict[str, Any] | None = None,
) -> dict[str, str]:
    """report.json + report.html (+ Data Docs) under the run's reports folder; returns their URLs.

    ``items`` are the run's rows (a frame) or its bounded table (``assess_stored``). Sample
    audio is read with ``audio_storage_options`` (default: the output store's own)."""
    if audio_storage_options is None:
        audio_storage_options = store.storage_options
    table = items if isinstance(items, RunTable) else RunTable.from_frame(items)
    samples: list[dict] = []
    if table.located is not None:
        chosen, score_col = rank_samples(table.frame, cfg.report_samples, table.located)
        rows = table.rows([p for _, p in chosen])
        labels = [label for label, _ in chosen]
        samples = load_samples(rows, labels, score_col, audio_storage_options, store)
    df = table.report_frame
    report_json, html = build_report(
        assessment.summary,
        df,
        assessment.fairness,
        assessment.contract,
        samples,
        sections=validator_sections(df, cfg),
        data_docs_href="data_docs/index.html",
        flagged=(table.flagged_total, table.flagged),
    )
    reports = layout.reports_dir(run_id)
    for path in Path(docs_dir).rglob("*"):
        if path.is_file():
            store.write_bytes(
                f"{reports}/data_docs/{path.relative_to(docs_dir).as_posix()}", path.read_bytes()
            )
    urls = write_report(report_json, html, store, reports)
    return {**urls, "data_docs": store.uri(f"{reports}/data_docs/index.html")}


def docs_tempdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(
        prefix="audio-synth-docs-", dir=os.environ.get("DASK_TEMPORARY_DIRECTORY")
    )
