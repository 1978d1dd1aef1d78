"""The HTML toolkit of every report: escaping, tables, embedded figures, and the shared CSS.

Pages built with it are self-contained: figures are inline base64 PNGs drawn on
``matplotlib.figure.Figure`` objects (Agg canvas), never through pyplot, so building a report
touches no global plotting state. Validators use it for their own report sections.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

AUDIO_BUDGET_BYTES = 4_000_000  # all embedded players of a page together; keeps it a few MB


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


def histogram_img(
    values: np.ndarray,
    xlabel: str,
    *,
    limit: float | None = None,
    limit_label: str = "limit",
    color: str = "#6b4fa0",
) -> str:
    """One wide histogram of ``values`` as an ``<img>``, with ``limit`` as a dashed red line."""
    fig, (ax,) = figure_grid(1, panel=(7.0, 2.8))
    bins = min(50, max(5, int(np.sqrt(values.size))))
    ax.hist(values, bins=bins, color=color, histtype="stepfilled")
    ax.set_xlabel(xlabel)
    if limit is not None:
        ax.axvline(limit, color="#b3261e", ls="--", label=f"{limit_label} {limit:g}")
        ax.legend(fontsize=8)
    return png_img(fig)


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
