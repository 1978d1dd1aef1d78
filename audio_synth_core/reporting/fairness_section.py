"""The fairness section of the run report: pass-rate parity, coverage balance, group charts."""

from __future__ import annotations

from typing import Any

import numpy as np

from audio_synth_core.reporting.html import RawHtml, escape_html, figure_grid, html_table, png_img

_PARITY = ("attribute", "min/max ratio", "verdict", "lowest", "highest", "below 4/5", "too small")
_COVERAGE = ("attribute", "groups", "norm. entropy", "max/min", "min share", "under", "verdict")


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


def fairness_html(fairness: dict[str, Any] | None) -> str:
    """Parity and coverage tables plus one chart per attribute, from ``FairnessReport.to_dict``."""
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
        html_table(_PARITY, parity_rows)
        if parity_rows
        else '<p class="muted">No pass/fail column: parity not computed.</p>'
    )
    out.append("<h3>Coverage balance</h3>")
    out.append(html_table(_COVERAGE, coverage_rows))
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
