"""The comparison report: one self-contained HTML page (inline CSS, base64 PNG figures and audio)
with the decision and its reason, the comparison table, CI plots of the means and of the paired
differences, gate statistics, and side-by-side players per prompt."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from audio_synth_core.compare.promotion import Decision, format_number
from audio_synth_core.compare.prompts import Prompt
from audio_synth_core.compare.table import PASS_RATE, GateStats
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
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

_TABLE_HEADERS = [
    "candidate",
    "metric",
    "n",
    "mean",
    "95% CI",
    "n paired",
    "diff vs ref",
    "diff 95% CI",
]
_GATE_HEADERS = [
    "candidate",
    "prompts",
    "failed to synthesize",
    "pass rate",
    "privacy flags",
    "four-fifths flags",
]


def candidate_samples(
    store: Store,
    eval_id: str,
    frames: dict[str, pd.DataFrame],
    prompts: list[Prompt],
    n: int,
    fmt: str,
    metric: str,
) -> list[dict[str, Any]]:
    """The first ``n`` prompts' audio of every candidate, for the report's players."""
    out = []
    for p in prompts[:n]:
        clips = {}
        for label, frame in frames.items():
            row = frame[frame["prompt_id"] == p.id]
            if row.empty:
                continue
            r = row.iloc[0]
            if r.get("status") != "ok":
                clips[label] = {"error": r.get("error")}
                continue
            metrics = {k: r.get(k) for k in (metric, "passed") if k in row.columns}
            rel = layout.candidate_audio(eval_id, label, f"{p.id}.{fmt}")
            clips[label] = {
                "audio_bytes": store.read_bytes(rel),
                "mime": f"audio/{fmt}",
                "metrics": metrics,
            }
        out.append({"prompt_id": p.id, "text": p.text, "clips": clips})
    return out


def _ci_figure(
    table: pd.DataFrame, metrics: Sequence[str], kind: str, decision: Decision | None
) -> str:
    mean, lo, hi = (
        ("mean", "ci_low", "ci_high")
        if kind == "mean"
        else ("diff_mean", "diff_ci_low", "diff_ci_high")
    )
    panels = [m for m in metrics if table.loc[table["metric"] == m, mean].notna().any()]
    if not panels:
        return ""
    reference = str(table["reference"].iloc[0])
    title = (
        "mean per candidate, 95% bootstrap CI"
        if kind == "mean"
        else f"paired difference versus {reference} (candidate - {reference}), 95% bootstrap CI"
    )
    fig, axes = figure_grid(len(panels), ncols=3, panel=(4.0, 2.8), title=title)
    for ax, m in zip(axes, panels, strict=True):
        rows = table[(table["metric"] == m) & table[mean].notna()]
        pos = np.arange(len(rows))
        means = rows[mean].to_numpy(dtype=float)
        err = np.nan_to_num(
            np.vstack([means - rows[lo].to_numpy(float), rows[hi].to_numpy(float) - means]), nan=0.0
        )
        ax.errorbar(pos, means, yerr=err.clip(min=0), fmt="o", capsize=5, color="#3b6ea8")
        ax.set_xticks(pos, list(rows["candidate"]))
        ax.tick_params(labelsize=8)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_title(m, fontsize=10)
        if kind == "diff":
            ax.axhline(0, color="#5b6773", lw=1)
            if decision is not None and m == decision.metric and decision.margin:
                sign = -1 if decision.direction == "lower" else 1
                ax.axhline(sign * decision.margin, color="#b3261e", ls="--", lw=1, label="margin")
                ax.legend(fontsize=7)
    return png_img(fig)


def _players(
    samples: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    max_prompts: int,
    show: Sequence[str],
) -> str:
    budget, skipped, rows = AUDIO_BUDGET_BYTES, 0, []
    for s in list(samples)[:max_prompts]:
        cells: list[Any] = [
            RawHtml(
                f"{escape_html(s.get('text', ''))}<br><code>{escape_html(s.get('prompt_id', ''))}</code>"
            )
        ]
        for label in labels:
            clip = (s.get("clips") or {}).get(label)
            data = bytes((clip or {}).get("audio_bytes") or b"")
            if not clip or not data or len(data) > budget:
                skipped += bool(data)
                note = (clip or {}).get("error") or (
                    "not embedded (size budget)" if data else "no audio"
                )
                cells.append(RawHtml(f'<span class="muted">{escape_html(note)}</span>'))
                continue
            budget -= len(data)
            src = f"data:{clip.get('mime', 'audio/flac')};base64,{base64.b64encode(data).decode('ascii')}"
            metrics = clip.get("metrics") or {}
            text = " &middot; ".join(
                f"{escape_html(k)} {format_value(metrics.get(k))}" for k in show if k in metrics
            )
            cells.append(
                RawHtml(
                    f'<audio controls preload="metadata" src="{src}"></audio>'
                    f'<div class="muted">{text}</div>'
                )
            )
        rows.append(cells)
    out = html_table(["prompt", *labels], rows, "players-table")
    if len(samples) > max_prompts:
        out += f'<p class="muted">{len(samples) - max_prompts} more prompts not shown.</p>'
    if skipped:
        out += f'<p class="muted">{skipped} clips not embedded (size budget).</p>'
    return out


def _table_html(table: pd.DataFrame, metrics: Sequence[str], decision: Decision | None) -> str:
    rows = []
    for m in metrics:
        for r in table[table["metric"] == m].itertuples(index=False):
            ci = (
                f"[{format_number(r.ci_low)}, {format_number(r.ci_high)}]"
                if pd.notna(r.ci_low)
                else None
            )
            dci = (
                f"[{format_number(r.diff_ci_low)}, {format_number(r.diff_ci_high)}]"
                if pd.notna(r.diff_ci_low)
                else None
            )
            bold = decision is not None and m == decision.metric
            rows.append(
                [
                    r.candidate,
                    RawHtml(f"<b>{escape_html(m)}</b>") if bold else m,
                    r.n,
                    r.mean,
                    ci,
                    None if pd.isna(r.n_paired) else int(r.n_paired),
                    None if pd.isna(r.diff_mean) else r.diff_mean,
                    dci,
                ]
            )
    ref = table["reference"].iloc[0] if len(table) else ""
    return (
        f'<p class="muted">Differences are paired per prompt: candidate - {escape_html(ref)}.</p>'
        + html_table(_TABLE_HEADERS, rows)
    )


def _gates_html(gates: Mapping[str, GateStats]) -> str:
    rows = [
        (
            label,
            g.n_items,
            g.n_failed,
            g.pass_rate,
            g.privacy_flags,
            "; ".join(g.four_fifths_flags) or ("none" if g.parity_attributes else "not evaluable"),
        )
        for label, g in gates.items()
    ]
    return html_table(_GATE_HEADERS, rows)


def _banner_html(decision: Decision | None) -> str:
    if decision is None:
        return '<div class="banner pass"><strong>NO DECISION</strong></div>'
    cls = "pass" if decision.promote else "fail"
    head = "PROMOTE" if decision.promote else "KEEP THE INCUMBENT"
    if decision.promote and decision.model_name:
        head += f": {decision.model_name}@{decision.alias} -> version {decision.version or '?'}"
    gate_list = "".join(
        f"<li>{escape_html(k)}: {escape_html(v)}</li>" for k, v in decision.gates.items()
    )
    return (
        f'<div class="banner {cls}"><strong>{escape_html(head)}</strong>'
        f"<div>rule <code>{escape_html(decision.rule)}</code>: {escape_html(decision.reason)}</div>"
        f"{f'<ul>{gate_list}</ul>' if gate_list else ''}</div>"
    )


def comparison_report_html(
    table: pd.DataFrame,
    decision: Decision | None,
    samples: Sequence[Mapping[str, Any]] = (),
    gates: Mapping[str, GateStats] | None = None,
    *,
    summary: Mapping[str, Any] | None = None,
    max_prompts: int = 8,
    title: str = "audio-synth generator comparison",
) -> str:
    """One self-contained page: decision and reason, comparison table, CI plots of the means and
    of the paired differences, gate statistics, and side-by-side players per prompt.

    ``samples`` are ``{prompt_id, text, clips: {label: {audio_bytes, mime, metrics, error}}}``;
    at most ``max_prompts`` rows are embedded, within the report's audio byte budget.
    """
    labels = list(dict.fromkeys(table["candidate"]))
    metrics = list(dict.fromkeys(table["metric"]))
    if decision is not None and decision.metric in metrics:  # the deciding metric first
        metrics.remove(decision.metric)
        metrics.insert(0, decision.metric)
    sections: list[tuple[str, str]] = []
    if summary:
        sections.append(
            ("Run", html_table(["key", "value"], [(k, v) for k, v in summary.items()], "kv"))
        )
    sections.append(("Comparison table", _table_html(table, metrics, decision)))
    sections.append(
        ("Means with confidence intervals", _ci_figure(table, metrics, "mean", decision))
    )
    sections.append(("Paired differences", _ci_figure(table, metrics, "diff", decision)))
    if gates:
        sections.append(("Gate statistics", _gates_html(gates)))
    show = [m for m in metrics if m != PASS_RATE][:3]
    sections.append(
        ("Listen: each prompt, every candidate", _players(samples, labels, max_prompts, show))
    )
    body = "".join(f"<section><h2>{escape_html(t)}</h2>{s}</section>" for t, s in sections if s)
    css = CSS + ".players-table audio{width:220px}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape_html(title)}</title><style>{css}</style></head><body><main>"
        f"<h1>{escape_html(title)}</h1>{_banner_html(decision)}{body}</main></body></html>"
    )
