"""The dataset run report: one self-contained HTML page with the plan (target vs planned share per
group), what was achieved after the quality filter, the rejection rate per group, the leak check
(overlap counts of hashed speakers, texts and documents between splits) and sizes per split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from audio_synth_core.reporting.html import CSS, escape_html, figure_grid, html_table, png_img

PLOTTED = ("gender", "accent", "age_band", "source", "split", "label")


def achieved_groups(plan_groups: list[dict[str, Any]], kept: pd.DataFrame) -> pd.DataFrame:
    """Plan groups with the kept dataset's share next to the target (clean rows = planned rows:
    one per planned row, whatever its copies)."""
    df = pd.DataFrame(plan_groups)
    if df.empty:
        return df
    rows = kept.drop_duplicates("row_id")
    speech = rows[rows["kind"] == "speech"]
    column = {"speaker": "speaker_id"}
    achieved = []
    for g in df.itertuples():
        base = rows if g.attribute in ("source", "split", "label") else speech
        col = column.get(g.attribute, g.attribute)
        n = int((base[col].fillna("unknown") == g.group).sum()) if col in base.columns else 0
        achieved.append((n, n / len(base) if len(base) else 0.0))
    df["achieved"] = [a for a, _ in achieved]
    df["achieved_share"] = [s for _, s in achieved]
    return df


def _plot(groups: pd.DataFrame, rates: pd.DataFrame) -> str:
    attrs = [a for a in PLOTTED if a in set(groups["attribute"])]
    if not attrs:
        return ""
    fig, axes = figure_grid(2 * len(attrs), ncols=2, panel=(5.0, 2.6))
    for i, attr in enumerate(attrs):
        sub = groups[groups["attribute"] == attr].head(30)
        ax = axes[2 * i]
        x = range(len(sub))
        ax.bar([j - 0.2 for j in x], sub["target_share"].fillna(0), width=0.4, label="target")
        ax.bar([j + 0.2 for j in x], sub["achieved_share"], width=0.4, label="achieved")
        ax.set_xticks(list(x), sub["group"].astype(str), rotation=45, fontsize=7, ha="right")
        ax.set_title(f"{attr}: share of items", fontsize=9)
        ax.legend(fontsize=7)
        r = rates[rates["attribute"] == attr].head(30)
        ax = axes[2 * i + 1]
        ax.bar(range(len(r)), r["rejection_rate"], color="tab:red")
        ax.set_xticks(range(len(r)), r["group"].astype(str), rotation=45, fontsize=7, ha="right")
        ax.set_title(f"{attr}: rejection rate", fontsize=9)
        ax.set_ylim(0, max(0.05, float(r["rejection_rate"].max() or 0) * 1.2))
    return png_img(fig)


def report_html(
    title: str,
    summary: Mapping[str, Any],
    groups: pd.DataFrame,
    rates: pd.DataFrame,
    leaks: Mapping[str, Any],
    sizes: pd.DataFrame,
) -> str:
    """The report page (self-contained)."""
    overview = html_table(["", "value"], [[k, v] for k, v in summary.items()])
    leak_rows = [[k, v] for k, v in leaks["pairs"].items()]
    group_cols = ["attribute", "group", "target_share", "planned_share", "achieved_share",
                  "planned", "achieved", "within_tolerance"]  # fmt: skip
    shown = groups[[c for c in group_cols if c in groups.columns]]
    sections = [
        ("Overview", overview),
        ("Sizes per split", html_table(list(sizes.columns), sizes.itertuples(index=False))),
        ("Target vs achieved, and rejection rate, per group", _plot(groups, rates)),
        (
            "Leak check: hashed speakers, normalized texts and documents shared between splits",
            html_table(["dimension: split pair", "shared"], leak_rows),
        ),
        ("Groups", html_table(list(shown.columns), shown.itertuples(index=False))),
        (
            "Rejection rate per group",
            html_table(list(rates.columns), rates.itertuples(index=False)),
        ),
    ]
    body = "".join(f"<section><h2>{escape_html(t)}</h2>{s}</section>" for t, s in sections if s)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape_html(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{escape_html(title)}</h1>{body}</main></body></html>"
    )


def split_sizes_table(kept: pd.DataFrame) -> pd.DataFrame:
    """Items, hours, speakers, clean and augmented items per split of the kept dataset."""
    rows = []
    for split, df in kept.groupby("split", sort=False):
        rows.append(
            {"split": split, "items": len(df), "hours": round(df["duration_s"].sum() / 3600, 4),
             "speakers": int(df["speaker_id"].nunique()), "clean": int((~df["augmented"]).sum()),
             "augmented": int(df["augmented"].sum()), "labels": int(df["label"].nunique())}
        )  # fmt: skip
    order = {"train": 0, "dev": 1, "test": 2}
    return (
        pd.DataFrame(rows).sort_values("split", key=lambda s: s.map(order)).reset_index(drop=True)
    )
