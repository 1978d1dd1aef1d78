"""The run report: one machine-readable JSON dict and one self-contained HTML page.

The HTML has inline CSS, matplotlib figures as base64 PNG and sample audio as base64 data URIs,
so it can be attached to MLflow or mailed as one file; the only link is a relative one to the
Data Docs site of the data contract. The markup comes from ``reporting.html``; validators add
their own sections (``Validator.report_section``), passed in as ``sections``.
"""

from __future__ import annotations

import base64
import json
import os
import posixpath
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from audio_synth_core.assessment.fairness import FairnessReport, metric_columns, passed_flags
from audio_synth_core.reporting.fairness_section import fairness_html
from audio_synth_core.reporting.html import (
    AUDIO_BUDGET_BYTES,
    CSS,
    RawHtml,
    escape_html,
    figure_grid,
    format_value,
    html_table,
    png_img,
)
from audio_synth_core.store.serialize import json_safe as _json_safe
from audio_synth_core.store.storage import Store

if TYPE_CHECKING:
    from audio_synth_core.assessment.contract import ContractResult

REPORT_SCHEMA = "audio_synth.report/1"
MAX_PLAYERS = 8
MAX_FLAGGED_HTML = 200
MAX_FLAGGED_JSON = 1000
FLAGGED_COLUMNS = ("id", "status", "voice", "generator", "failed_checks", "error")
# A bounded run table (assessment.run_table) holds each failure's kind, not its whole message.
ERROR_KIND = "error_kind"


def _as_dict(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj)


# ----------------------------------------------------------------------------- JSON parts


def error_kind(error: Any) -> str:
    """What kind of failure an ``error`` message names: the text before its first colon."""
    return str(error).split(":", 1)[0].strip()[:80]


def check_counts(failed_checks: pd.Series, *, once_per_item: bool = True) -> dict[str, int]:
    """Items by failed check, from a column of comma-separated check names, most frequent first.

    Counted over the column's distinct values (a run has few combinations of failed checks);
    ``once_per_item`` counts a check named twice in one item once, and ignores blank names."""
    counts: Counter[str] = Counter()
    for value, k in failed_checks.value_counts(dropna=True).items():
        names = str(value).split(",")
        if once_per_item:
            names = list(dict.fromkeys(c.strip() for c in names if c.strip()))
        for name in names:
            counts[name] += int(k)
    return {name: k for name, k in counts.most_common() if k}


def _counts(df: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"items": len(df)}
    if "status" in df.columns:
        status = df["status"].value_counts()
        out["status"] = {str(k): int(v) for k, v in status.items() if v}
    if "passed" in df.columns:
        passed = passed_flags(df["passed"])
        out["passed"] = int(passed.sum())
        out["not_passed"] = int((~passed).sum())
    checks = check_counts(df["failed_checks"]) if "failed_checks" in df.columns else {}
    out["failed_checks"] = checks
    kinds = None
    if ERROR_KIND in df.columns:
        kinds = df[ERROR_KIND].dropna().astype(str)
    elif "error" in df.columns:
        kinds = df["error"].dropna().astype(str).map(error_kind)
    if kinds is not None:
        top = kinds.value_counts().head(20)
        out["errors"] = {str(k): int(v) for k, v in top.items() if v}
    return out


def _metric_stats(df: pd.DataFrame, cols: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for c in cols:
        x = pd.to_numeric(df[c], errors="coerce").dropna().to_numpy(dtype=np.float64)
        if x.size == 0:
            out[c] = {"count": 0}
            continue
        q = np.quantile(x, [0.05, 0.5, 0.95])
        out[c] = {
            "count": int(x.size),
            "mean": float(x.mean()),
            "std": float(x.std()),
            "min": float(x.min()),
            "p05": float(q[0]),
            "p50": float(q[1]),
            "p95": float(q[2]),
            "max": float(x.max()),
        }
    return out


def flagged_mask(df: pd.DataFrame) -> pd.Series:
    """Items the report lists: not ok (a missing status included), or not passed."""
    bad = pd.Series(False, index=df.index)
    if "status" in df.columns:
        bad |= df["status"].astype(object).fillna("missing") != "ok"
    if "passed" in df.columns:
        bad |= ~passed_flags(df["passed"])
    return bad


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_json_safe(r) for r in frame.astype(object).to_dict(orient="records")]


def _verdict(
    summary: Mapping[str, Any], fairness: dict[str, Any] | None, contract: dict[str, Any] | None
) -> dict[str, Any]:
    """The gate: the summary's own verdict when it has one, else contract + four-fifths rule."""
    reasons = [str(r) for r in summary.get("gate_reasons", []) or []]
    warnings = []
    if contract is not None and not contract.get("success", True):
        failed = [
            f"{r['expectation']}({r.get('column') or 'table'})"
            for r in contract.get("results", [])
            if not r.get("success")
        ]
        reasons.append(f"data contract failed: {', '.join(failed[:8])}")
    for flag in (fairness or {}).get("flags", []):
        (reasons if flag.startswith("four-fifths") else warnings).append(flag)
    gate = summary.get("gate_passed")
    passed = bool(gate) if gate is not None else not reasons
    if passed and not reasons:
        reasons = ["all gates passed"]
    return {"passed": passed, "reasons": list(dict.fromkeys(reasons)), "warnings": warnings}


# ----------------------------------------------------------------------------- HTML parts


def _verdict_html(verdict: dict[str, Any], summary: Mapping[str, Any]) -> str:
    cls = "pass" if verdict["passed"] else "fail"
    title = "GATE PASSED" if verdict["passed"] else "GATE FAILED"
    reasons = "".join(f"<li>{escape_html(r)}</li>" for r in verdict["reasons"])
    run = summary.get("run_id")
    sub = f" &middot; run {escape_html(run)}" if run else ""
    out = f'<div class="banner {cls}"><strong>{title}{sub}</strong><ul>{reasons}</ul></div>'
    if verdict["warnings"]:
        items = "".join(f"<li>{escape_html(w)}</li>" for w in verdict["warnings"])
        out += f'<div class="warn"><b>Warnings</b><ul>{items}</ul></div>'
    return out


def _summary_html(summary: Mapping[str, Any]) -> str:
    rows = [
        (k, v if not isinstance(v, dict | list) else json.dumps(_json_safe(v))[:300])
        for k, v in summary.items()
        if k not in ("gate_passed", "gate_reasons")
    ]
    return html_table(["key", "value"], rows, "kv") if rows else ""


def _counts_html(counts: dict[str, Any]) -> str:
    rows: list[tuple[Any, ...]] = [("items", counts["items"])]
    rows += [(f"status = {k}", v) for k, v in counts.get("status", {}).items()]
    if "passed" in counts:
        rows += [("passed all checks", counts["passed"]), ("did not pass", counts["not_passed"])]
    out = html_table(["count", "items"], rows, "kv")
    if counts["failed_checks"]:
        out += "<h3>Failed checks by check</h3>" + html_table(
            ["check", "items"], list(counts["failed_checks"].items())
        )
    if counts.get("errors"):
        out += "<h3>Errors by kind</h3>" + html_table(
            ["error", "items"], list(counts["errors"].items())
        )
    return out


def _histograms_html(df: pd.DataFrame, cols: list[str], stats: dict[str, Any]) -> str:
    cols = [c for c in cols if stats[c].get("count")]
    if not cols:
        return '<p class="muted">No numeric metrics.</p>'
    fig, axes = figure_grid(len(cols))
    for ax, c in zip(axes, cols, strict=True):
        x = pd.to_numeric(df[c], errors="coerce").dropna().to_numpy(dtype=np.float64)
        ax.hist(
            x, bins=min(40, max(5, int(np.sqrt(x.size)))), color="#3b6ea8", histtype="stepfilled"
        )
        ax.set_title(f"{c}  (n={x.size}, median {stats[c]['p50']:.3g})", fontsize=10)
        ax.tick_params(labelsize=8)
    img = png_img(fig)
    headers = ["metric", "n", "mean", "std", "min", "p05", "median", "p95", "max"]
    keys = ["count", "mean", "std", "min", "p05", "p50", "p95", "max"]
    rows = [[c, *(s.get(k) for k in keys)] for c, s in stats.items()]
    return img + html_table(headers, rows)


def _contract_html(contract: dict[str, Any] | None, docs_href: str | None) -> str:
    if not contract:
        return '<p class="muted">No contract result.</p>'
    verdict = "passed" if contract.get("success") else "FAILED"
    head = (
        f"<p>Contract {verdict}: {contract.get('n_failed', 0)} of "
        f"{contract.get('n_expectations', len(contract.get('results', [])))} expectations failed "
        f"on {contract.get('n_rows', '?')} rows."
    )
    if docs_href:
        head += f' <a href="{escape_html(docs_href)}">Open the Great Expectations Data Docs</a>.'
    head += "</p>"
    headers = ["expectation", "column", "rows", "result", "unexpected", "examples / details"]
    rows: dict[bool, list[tuple[Any, ...]]] = {True: [], False: []}
    for r in contract.get("results", []):
        ok = bool(r.get("success"))
        examples = ", ".join(map(str, (r.get("partial_unexpected") or [])[:5]))
        detail = r.get("exception") or (json.dumps(r["details"]) if r.get("details") else None)
        rows[ok].append(
            (
                r.get("expectation"),
                r.get("column") or "(table)",
                r.get("condition") or "all",
                RawHtml("ok" if ok else "<b>FAILED</b>"),
                r.get("unexpected_count"),
                None if ok else (examples or detail),
            )
        )
    out = head + (html_table(headers, rows[False]) if rows[False] else "")
    if rows[True]:
        # Passing expectations are folded away: the failures are what a reader needs first.
        out += (
            f"<details><summary>{len(rows[True])} expectations passed</summary>"
            f"{html_table(headers, rows[True])}</details>"
        )
    return out


def _flagged_html(flagged: pd.DataFrame, total: int) -> str:
    if not total:
        return '<p class="muted">No failed items.</p>'
    shown = flagged.head(MAX_FLAGGED_HTML)
    note = (
        f"<p>{total} items failed generation or a check"
        + (f"; the first {len(shown)} are listed." if total > len(shown) else ".")
        + "</p>"
    )
    rows = [
        [None if pd.isna(v) else v for v in r] for r in shown.astype(object).itertuples(index=False)
    ]
    return note + html_table(list(shown.columns), rows)


def _players_html(samples: Sequence[Mapping[str, Any]] | None) -> tuple[str, list[dict]]:
    if not samples:
        return '<p class="muted">No sample audio.</p>', []
    cards, meta, budget, skipped = [], [], AUDIO_BUDGET_BYTES, []
    for s in list(samples)[:MAX_PLAYERS]:
        audio = bytes(s.get("audio_bytes") or b"")
        entry = {
            "id": s.get("id"),
            "label": s.get("label"),
            "mime": s.get("mime", "audio/flac"),
            "bytes": len(audio),
            "metrics": _json_safe(dict(s.get("metrics") or {})),
            "embedded": False,
        }
        if not audio or len(audio) > budget:
            skipped.append(str(s.get("id")))
            meta.append(entry)
            continue
        budget -= len(audio)
        entry["embedded"] = True
        meta.append(entry)
        src = f"data:{entry['mime']};base64,{base64.b64encode(audio).decode('ascii')}"
        metrics = " &middot; ".join(
            f"{escape_html(k)} {format_value(v)}" for k, v in entry["metrics"].items()
        )
        cards.append(
            f'<div class="player"><b>{escape_html(entry["label"] or "")}</b> '
            f"<code>{escape_html(entry['id'])}</code><br>"
            f'<audio controls preload="metadata" src="{src}"></audio>'
            f'<div class="muted">{metrics}</div></div>'
        )
    out = f'<div class="players">{"".join(cards)}</div>'
    if skipped:
        out += f'<p class="muted">Not embedded (size budget): {escape_html(", ".join(skipped))}</p>'
    if len(samples) > MAX_PLAYERS:
        out += f'<p class="muted">{len(samples) - MAX_PLAYERS} more samples not shown.</p>'
    return out, meta


# ----------------------------------------------------------------------------- public API


def build_report(
    summary: Mapping[str, Any],
    df: pd.DataFrame,
    fairness: FairnessReport | dict | None,
    contract: ContractResult | dict | None,
    samples: list[dict] | None,
    *,
    sections: Sequence[tuple[str, str]] = (),
    data_docs_href: str | None = None,
    title: str = "audio-synth run report",
    flagged: tuple[int, pd.DataFrame] | None = None,
) -> tuple[dict, str]:
    """The run report as (JSON dict, self-contained HTML page).

    ``summary`` is the run's summary (shown as a table); its ``gate_passed``/``gate_reasons``,
    when present, decide the verdict, else the contract and the four-fifths rule do.
    ``samples`` are ``{id, label, audio_bytes, mime, metrics}``; at most ``MAX_PLAYERS`` are
    embedded, within ``AUDIO_BUDGET_BYTES``. ``data_docs_href`` is the Data Docs link relative to
    the report; by default ``<docs folder name>/index.html``, i.e. docs written next to it.
    ``sections`` are ``(title, html)`` pairs from the validators, shown after the fairness part.
    ``flagged`` is (how many items are flagged, the first ``MAX_FLAGGED_JSON`` of them) where
    ``df`` cannot tell (a bounded run table, ``assessment.run_table``); by default from ``df``.
    """
    fair = _as_dict(fairness)
    con = _as_dict(contract)
    verdict = _verdict(summary, fair, con)
    counts = _counts(df)
    metrics = metric_columns(df)
    stats = _metric_stats(df, metrics)
    if flagged is None:
        rows = df.loc[flagged_mask(df), [c for c in FLAGGED_COLUMNS if c in df.columns]]
        flagged = (len(rows), rows)
    flagged_total, flagged_rows = flagged
    if data_docs_href is None and con and con.get("data_docs_index"):
        index = con["data_docs_index"]
        data_docs_href = posixpath.join(os.path.basename(os.path.dirname(index)), "index.html")
    players, sample_meta = _players_html(samples)

    report = _json_safe(
        {
            "schema": REPORT_SCHEMA,
            "verdict": verdict,
            "summary": dict(summary),
            "counts": counts,
            "metrics": stats,
            "fairness": fair,
            "contract": con,
            "data_docs_href": data_docs_href,
            "flagged_total": flagged_total,
            "flagged_items": _records(flagged_rows.head(MAX_FLAGGED_JSON)),
            "samples": sample_meta,
        }
    )

    parts = [
        ("Summary", _summary_html(summary)),
        ("Counts", _counts_html(counts)),
        ("Metric distributions", _histograms_html(df, metrics, stats)),
        ("Fairness", fairness_html(fair)),
        *sections,
        ("Data contract", _contract_html(con, data_docs_href)),
        ("Flagged items", _flagged_html(flagged_rows, flagged_total)),
        ("Samples", players),
    ]
    body = "".join(f"<section><h2>{escape_html(t)}</h2>{s}</section>" for t, s in parts if s)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape_html(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape_html(title)}</h1>{_verdict_html(verdict, summary)}{body}</main></body></html>"
    )
    return report, page


def write_report(
    json_dict: Mapping[str, Any], html_page: str, store: Store, folder: str, name: str = "report"
) -> dict[str, str]:
    """Write ``<name>.json`` and ``<name>.html`` into ``folder`` of ``store`` (atomic writes, the
    store's own storage options). Returns the written URLs by extension."""
    rel = f"{folder}/{name}" if folder else name
    store.write_bytes(
        f"{rel}.json", json.dumps(_json_safe(json_dict), indent=2, allow_nan=False).encode()
    )
    store.write_bytes(f"{rel}.html", html_page.encode("utf-8"))
    return {ext: store.uri(f"{rel}.{ext}") for ext in ("json", "html")}
