"""The promotion decision: does the challenger model version take the incumbent's registry alias?

It must pass every required gate on its own, beat the incumbent on the decision metric by at
least the margin, and the CI of the paired difference must exclude 0 in the good direction. The
``Decision`` names the one rule that decided and says why in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from audio_synth_core.compare.table import GateStats
from audio_synth_core.config.compare import CompareConfig, RequiredGates
from audio_synth_core.store import ids
from audio_synth_core.store.serialize import json_safe as _json_safe


@dataclass(frozen=True)
class Decision:
    """Whether the challenger takes the alias, and the one rule that decided (``rule``):
    ``promote``, ``gate:<name>``, ``missing``, ``margin``, ``ci``, ``no_promotion`` (or, set by
    the flow, ``same_version``)."""

    promote: bool
    rule: str
    reason: str
    metric: str
    direction: str
    margin: float
    challenger: str | None = None
    incumbent: str | None = None
    improvement: float | None = None  # challenger's gain over the incumbent, in the good direction
    diff_mean: float | None = None  # challenger - incumbent, in metric units
    diff_ci_low: float | None = None
    diff_ci_high: float | None = None
    n_paired: int = 0
    gates: dict[str, str] = field(default_factory=dict)  # gate -> what was measured against what
    failed_gates: list[str] = field(default_factory=list)
    model_name: str | None = None
    alias: str | None = None
    version: str | None = None  # the challenger's model version (set by the flow)
    alias_before: str | None = None  # the version the alias named before the decision
    alias_set: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def decision_id(cfg: CompareConfig) -> str:
    """Id of one decision over a run's outputs (the rule, gates, bootstrap and report settings)."""
    key = cfg.model_dump(mode="json", include={"metric", "report_metrics", "promotion", "seed"})
    key["validation"] = cfg.validation.model_dump(
        mode="json", include={"n_boot", "fairness_attributes", "report_samples"}
    )
    return ids.digest(key)[: ids.RUN_ID_CHARS]


def format_number(v: float | None) -> str:
    """A metric value in words: 4 significant digits, ``n/a`` for None or NaN."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _check_gates(rules: RequiredGates, stats: GateStats | None) -> tuple[dict[str, str], list[str]]:
    """Each configured gate -> its verdict text; and the names of the gates that failed."""
    verdicts: dict[str, str] = {}
    failed: list[str] = []

    def judge(name: str, ok: bool, text: str) -> None:
        verdicts[name] = f"{'ok' if ok else 'FAILED'}: {text}"
        if not ok:
            failed.append(name)

    if stats is None:
        for name, value in rules.model_dump().items():
            if value not in (None, False):
                judge(name, False, "not measured for the challenger")
        return verdicts, failed
    if rules.min_pass_rate is not None:
        judge(
            "min_pass_rate",
            stats.pass_rate >= rules.min_pass_rate,
            f"pass rate {stats.pass_rate:.3f} vs required >= {rules.min_pass_rate:.3f}",
        )
    if rules.max_privacy_flags is not None:
        judge(
            "max_privacy_flags",
            stats.privacy_flags <= rules.max_privacy_flags,
            f"{stats.privacy_flags} prompts resemble a protected speaker (allowed {rules.max_privacy_flags})",
        )
    if rules.max_generation_failures is not None:
        judge(
            "max_generation_failures",
            stats.n_failed <= rules.max_generation_failures,
            f"{stats.n_failed} prompts failed to synthesize (allowed {rules.max_generation_failures})",
        )
    if rules.no_four_fifths_flag:
        if stats.four_fifths_flags:
            judge("no_four_fifths_flag", False, "; ".join(stats.four_fifths_flags))
        elif not stats.parity_attributes:
            # Unmeasurable is not "fair": a required fairness gate must be measured to pass.
            judge(
                "no_four_fifths_flag",
                False,
                "not evaluable: no prompt attribute has two groups of at least 5 prompts",
            )
        else:
            judge(
                "no_four_fifths_flag", True, f"parity holds by {', '.join(stats.parity_attributes)}"
            )
    return verdicts, failed


def decide_promotion(
    table: pd.DataFrame, cfg: CompareConfig, gates: Mapping[str, GateStats] | None = None
) -> Decision:
    """Promote the challenger when it passes every required gate, beats the incumbent on the
    decision metric by at least the margin, and the CI of the paired difference excludes 0 in
    the good direction. ``table`` must have the incumbent as its reference."""
    rule = cfg.metric
    base = {"metric": rule.name, "direction": rule.direction or "lower", "margin": rule.margin}
    p = cfg.promotion
    if p is None:
        return Decision(False, "no_promotion", "no promotion configured", **base)
    base |= {
        "challenger": p.challenger,
        "incumbent": p.incumbent,
        "model_name": p.model_name,
        "alias": p.alias,
    }
    verdicts, failed = _check_gates(p.require_gates, (gates or {}).get(p.challenger))
    base |= {"gates": verdicts, "failed_gates": failed}
    row = table[(table["candidate"] == p.challenger) & (table["metric"] == rule.name)]
    found = not row.empty and (row["reference"] == p.incumbent).all()
    r = row.iloc[0] if found else None
    diff = _num(r["diff_mean"]) if r is not None else None
    lo, hi = (_num(r["diff_ci_low"]), _num(r["diff_ci_high"])) if r is not None else (None, None)
    n_paired = int(r["n_paired"]) if r is not None and not pd.isna(r["n_paired"]) else 0
    lower = rule.direction == "lower"
    improvement = None if diff is None else (-diff if lower else diff)
    base |= {
        "improvement": improvement,
        "diff_mean": diff,
        "diff_ci_low": lo,
        "diff_ci_high": hi,
        "n_paired": n_paired,
    }
    what = f"{rule.name} ({rule.direction} is better)"
    if failed:
        texts = "; ".join(f"{g} {verdicts[g].removeprefix('FAILED: ')}" for g in failed)
        return Decision(
            False,
            f"gate:{failed[0]}",
            f"keep: challenger {p.challenger!r} fails required gate(s): {texts}",
            **base,
        )
    if r is None or diff is None:
        why = (
            "no paired values"
            if r is not None
            else f"no {rule.name} row versus {p.incumbent!r} in the table"
        )
        return Decision(
            False, "missing", f"keep: {why} for challenger {p.challenger!r} on {what}", **base
        )
    ci = f"{rule.confidence:.0%} CI of the difference [{format_number(lo)}, {format_number(hi)}]"
    if improvement is None or improvement <= 0 or improvement < rule.margin:
        verb = "does not improve on" if (improvement or 0) <= 0 else "improves on"
        return Decision(
            False,
            "margin",
            f"keep: challenger {p.challenger!r} {verb} incumbent {p.incumbent!r} on {what} "
            f"by {format_number(improvement)} (challenger - incumbent = {format_number(diff)}), less than the margin {format_number(rule.margin)}",
            **base,
        )
    excludes = (hi is not None and hi < 0) if lower else (lo is not None and lo > 0)
    if not excludes:
        return Decision(
            False,
            "ci",
            f"keep: challenger {p.challenger!r} improves on {p.incumbent!r} on {what} by {format_number(improvement)} "
            f"(margin {format_number(rule.margin)}), but the {ci} over {n_paired} paired prompts "
            f"{'is undefined' if lo is None else 'includes 0'}",
            **base,
        )
    gate_text = (
        f"; required gates hold ({', '.join(verdicts)})" if verdicts else "; no gates required"
    )
    return Decision(
        True,
        "promote",
        f"promote: challenger {p.challenger!r} beats incumbent {p.incumbent!r} on {what} by "
        f"{format_number(improvement)} >= margin {format_number(rule.margin)}, and the {ci} over {n_paired} paired prompts "
        f"excludes 0{gate_text}",
        **base,
    )
