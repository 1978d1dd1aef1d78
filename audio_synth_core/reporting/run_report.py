"""The run report: one machine-readable JSON dict and one self-contained HTML page.

The HTML has inline CSS, matplotlib figures as base64 PNG and sample audio as base64 data URIs,
so it can be attached to MLflow or mailed as one file; the only link is a relative one to the
Data Docs site of the data contract. Figures are drawn on ``matplotlib.figure.Figure`` objects
(Agg canvas), never through pyplot, so building a report touches no global plotting state.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import posixpath
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from audio_synth_core.assessment.fairness import FairnessReport, metric_columns
from audio_synth_core.store.serialize import json_safe as _json_safe

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from audio_synth_core.assessment.contract import ContractResult

REPORT_SCHEMA = "audio_synth.report/1"
MAX_PLAYERS = 8
AUDIO_BUDGET_BYTES = 4_000_000  # all embedded players together; keeps the page a few MB
MAX_FLAGGED_HTML = 200
MAX_FLAGGED_JSON = 1000
_FLAGGED_COLUMNS = ("id", "status", "voice", "generator", "failed_checks", "error")


# ----------------------------------------------------------------------------- small helpers


def _as_dict(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj)


def escape_html(v: Any) -> str:
    """``str(v)`` escaped for HTML text and attribute values (quotes included)."""
    return html.escape(str(v), quote=True)


def format_value(v: Any) -> str:
    """One value as escaped HTML: a dash for None/NaN/inf, yes/no, 4 significant digits."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&mdash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape_html(v)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    """HTML table; cells are escaped unless they are already markup (wrapped in RawHtml)."""
    head = "".join(f"<th>{escape_html(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if isinstance(c, RawHtml) else format_value(c)}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class RawHtml(str):
    """Markup that html_table must not escape."""


def png_img(fig: Figure) -> str:
    """The figure rendered as an ``<img>`` tag with an inline base64 PNG data URI."""
    buf = io.BytesIO()
    # No tight bbox and no constrained layout: each costs extra full draws (seconds per report).
    fig.savefig(buf, format="png", dpi=80)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{data}">'


def figure_grid(
    n_panels: int, ncols: int = 3, panel: tuple[float, float] = (4.0, 2.6), title: str = ""
) -> tuple[Figure, np.ndarray]:
    """A pyplot-free Figure with ``n_panels`` axes in a grid, and those axes (extras hidden)."""
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    head = 0.8 if title else 0.4
    height = panel[1] * nrows + head
    fig = Figure(figsize=(panel[0] * ncols, height))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    # Fixed margins in inches, converted to figure fractions.
    fig.subplots_adjust(
        left=0.6 / fig.get_figwidth(),
        right=0.98,
        bottom=0.7 / height,
        top=1 - head / height,
        wspace=0.3,
        hspace=0.6,
    )
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.15 / height, va="top")
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


# ----------------------------------------------------------------------------- JSON parts


def _counts(df: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"items": len(df)}
    if "status" in df.columns:
        out["status"] = {str(k): int(v) for k, v in df["status"].value_counts().items()}
    if "passed" in df.columns:
        passed = df["passed"].astype(object).where(df["passed"].notna(), False).astype(bool)
        out["passed"] = int(passed.sum())
        out["not_passed"] = int((~passed).sum())
    checks: Counter[str] = Counter()
    if "failed_checks" in df.columns:
        for v in df["failed_checks"].dropna():
            checks.update({c.strip() for c in str(v).split(",") if c.strip()})  # once per item
    out["failed_checks"] = dict(checks.most_common())
    if "error" in df.columns:
        kinds = df["error"].dropna().astype(str).map(lambda s: s.split(":", 1)[0].strip()[:80])
        out["errors"] = {str(k): int(v) for k, v in kinds.value_counts().head(20).items()}
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


def _flagged(df: pd.DataFrame) -> pd.DataFrame:
    bad = pd.Series(False, index=df.index)
    if "status" in df.columns:
        bad |= df["status"].astype(object).fillna("missing") != "ok"
    if "passed" in df.columns:
        bad |= ~df["passed"].astype(object).where(df["passed"].notna(), False).astype(bool)
    cols = [c for c in _FLAGGED_COLUMNS if c in df.columns]
    return df.loc[bad, cols]


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


CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d232b;
background:#f4f6f8}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 12px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid
#d6dde4;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
.banner{border-radius:8px;padding:14px 18px;color:#fff;margin-bottom:12px}
.banner.pass{background:#1f7a3f}.banner.fail{background:#b3261e}
.banner strong{font-size:20px;display:block;margin-bottom:4px}.banner ul{margin:4px 0 0 18px;
padding:0}
.warn{background:#fff4d6;border:1px solid #e5c46b;border-radius:6px;padding:8px 12px}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d6dde4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#e9eef3}td.num{text-align:right}
tr.bad td{background:#fde8e6}
img{max-width:100%;background:#fff;border:1px solid #d6dde4;border-radius:4px}
.kv td:first-child{font-weight:600}
.players{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.player{background:#fff;border:1px solid #d6dde4;border-radius:6px;padding:10px}
.player audio{width:100%}.muted{color:#5b6773}code{font-size:12px}
"""


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


def _group_chart(attr: str, data: dict[str, Any]) -> str:
    panels: list[tuple[str, list[dict[str, Any]]]] = list(data["metrics"].items())
    if data.get("pass_rate"):
        panels.append(("pass rate", data["pass_rate"]["groups"]))
    panels = [(name, groups) for name, groups in panels if any(g["n"] for g in groups)]
    if not panels:
        return ""
    title = f"{attr}: mean by group, 95% bootstrap CI (grey: n too small for a CI)"
    fig, axes = figure_grid(len(panels), ncols=4, panel=(3.2, 2.6), title=title)
    for ax, (name, groups) in zip(axes, panels, strict=True):
        labels = [g["group"] for g in groups]
        means = np.array([g["mean"] if g["mean"] is not None else np.nan for g in groups])
        lo = np.array([g["ci_low"] if g["ci_low"] is not None else np.nan for g in groups])
        hi = np.array([g["ci_high"] if g["ci_high"] is not None else np.nan for g in groups])
        err = np.nan_to_num(np.vstack([means - lo, hi - means]), nan=0.0).clip(min=0)
        pos = np.arange(len(groups))
        colors = ["#9aa5b1" if g["ci_low"] is None else "#3b6ea8" for g in groups]
        ax.bar(pos, np.nan_to_num(means), yerr=err, capsize=4, color=colors)
        ax.set_xticks(pos, [f"{lab}\nn={g['n']}" for lab, g in zip(labels, groups, strict=True)])
        ax.tick_params(labelsize=8)
        ax.set_title(name, fontsize=10)
        if name == "pass rate":
            best = np.nanmax(means) if np.isfinite(means).any() else np.nan
            if np.isfinite(best):
                ax.axhline(0.8 * best, color="#b3261e", ls="--", lw=1, label="4/5 of best")
                ax.legend(fontsize=7, loc="lower right")
    return png_img(fig)


def _fairness_html(fairness: dict[str, Any] | None) -> str:
    if not fairness:
        return '<p class="muted">No fairness report.</p>'
    out = []
    parity_rows, coverage_rows = [], []
    for attr, data in fairness.get("attributes", {}).items():
        p = data.get("pass_rate")
        if p:
            parity_rows.append(
                (
                    attr,
                    p.get("ratio"),
                    RawHtml("<b>FLAGGED</b>" if p.get("flagged") else "ok"),
                    p.get("min_group"),
                    p.get("max_group"),
                    ", ".join(p.get("below_groups") or []) or None,
                    ", ".join(p.get("excluded_small_groups") or []) or None,
                )
            )
        c = data["coverage"]
        shares = ", ".join(
            f"{g}: {c['counts'][g]} ({s:.0%})" for g, s in sorted(c["shares"].items())
        )
        coverage_rows.append(
            (
                attr,
                shares,
                c.get("normalized_entropy"),
                c.get("max_min_ratio"),
                c.get("min_share"),
                ", ".join(c.get("under_represented") or []) or None,
                RawHtml("<b>FLAGGED</b>" if c.get("flagged") else "ok"),
            )
        )
    out.append("<h3>Pass-rate parity (four-fifths rule)</h3>")
    out.append(
        html_table(
            [
                "attribute",
                "min/max ratio",
                "verdict",
                "lowest",
                "highest",
                "below 4/5",
                "too small",
            ],
            parity_rows,
        )
        if parity_rows
        else '<p class="muted">No pass/fail column: parity not computed.</p>'
    )
    out.append("<h3>Coverage balance</h3>")
    out.append(
        html_table(
            ["attribute", "groups", "norm. entropy", "max/min", "min share", "under", "verdict"],
            coverage_rows,
        )
    )
    for attr, data in fairness.get("attributes", {}).items():
        chart = _group_chart(attr, data)
        if chart:
            out.append(f"<h3>By {escape_html(attr)}</h3>{chart}")
    if fairness.get("skipped"):
        out.append(
            '<p class="muted">Not analysed: '
            + "; ".join(
                f"{escape_html(k)} ({escape_html(v)})" for k, v in fairness["skipped"].items()
            )
            + "</p>"
        )
    return "".join(out)


def _similarity_html(df: pd.DataFrame, threshold: float | None) -> str:
    x = pd.to_numeric(df["max_similarity"], errors="coerce").dropna().to_numpy(dtype=np.float64)
    if x.size == 0:
        return '<p class="muted">No similarity values.</p>'
    fig, (ax,) = figure_grid(1, panel=(7.0, 2.8))
    ax.hist(x, bins=min(50, max(5, int(np.sqrt(x.size)))), color="#6b4fa0", histtype="stepfilled")
    ax.set_xlabel("max cosine similarity to a protected reference speaker")
    note = ""
    if threshold is not None:
        ax.axvline(threshold, color="#b3261e", ls="--", label=f"threshold {threshold:g}")
        ax.legend(fontsize=8)
        over = int((x > threshold).sum())
        note = f"<p>{over} of {x.size} items above the threshold {threshold:g}.</p>"
    return png_img(fig) + note


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


def _flagged_html(flagged: pd.DataFrame) -> str:
    if flagged.empty:
        return '<p class="muted">No failed items.</p>'
    shown = flagged.head(MAX_FLAGGED_HTML)
    note = (
        f"<p>{len(flagged)} items failed generation or a check"
        + (f"; the first {len(shown)} are listed." if len(flagged) > len(shown) else ".")
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
    similarity_threshold: float | None = None,
    data_docs_href: str | None = None,
    title: str = "audio-synth run report",
) -> tuple[dict, str]:
    """The run report as (JSON dict, self-contained HTML page).

    ``summary`` is the run's summary (shown as a table); its ``gate_passed``/``gate_reasons``,
    when present, decide the verdict, else the contract and the four-fifths rule do.
    ``samples`` are ``{id, label, audio_bytes, mime, metrics}``; at most ``MAX_PLAYERS`` are
    embedded, within ``AUDIO_BUDGET_BYTES``. ``data_docs_href`` is the Data Docs link relative to
    the report; by default ``<docs folder name>/index.html``, i.e. docs written next to it.
    ``similarity_threshold`` (else ``summary["similarity_threshold"]``) marks the privacy limit.
    """
    fair = _as_dict(fairness)
    con = _as_dict(contract)
    verdict = _verdict(summary, fair, con)
    counts = _counts(df)
    metrics = metric_columns(df)
    stats = _metric_stats(df, metrics)
    flagged = _flagged(df)
    if similarity_threshold is None and summary.get("similarity_threshold") is not None:
        similarity_threshold = float(summary["similarity_threshold"])
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
            "flagged_total": len(flagged),
            "flagged_items": _records(flagged.head(MAX_FLAGGED_JSON)),
            "samples": sample_meta,
        }
    )

    sections = [
        ("Summary", _summary_html(summary)),
        ("Counts", _counts_html(counts)),
        ("Metric distributions", _histograms_html(df, metrics, stats)),
        ("Fairness", _fairness_html(fair)),
    ]
    if "max_similarity" in df.columns:
        sections.append(("Speaker similarity", _similarity_html(df, similarity_threshold)))
    sections += [
        ("Data contract", _contract_html(con, data_docs_href)),
        ("Flagged items", _flagged_html(flagged)),
        ("Samples", players),
    ]
    body = "".join(f"<section><h2>{escape_html(t)}</h2>{s}</section>" for t, s in sections if s)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape_html(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape_html(title)}</h1>{_verdict_html(verdict, summary)}{body}</main></body></html>"
    )
    return report, page


def write_report(
    json_dict: Mapping[str, Any], html_page: str, folder_url: str, name: str = "report"
) -> dict[str, str]:
    """Write ``<name>.json`` and ``<name>.html`` into ``folder_url`` (any fsspec URL), atomically
    (through ``Store``). Returns the written URLs by extension."""
    from audio_synth_core.store.storage import Store

    store = Store(folder_url)
    store.write_bytes(
        f"{name}.json", json.dumps(_json_safe(json_dict), indent=2, allow_nan=False).encode()
    )
    store.write_bytes(f"{name}.html", html_page.encode("utf-8"))
    return {ext: store.uri(f"{name}.{ext}") for ext in ("json", "html")}
