"""The promotion rule (compare/promotion.py), table-driven: gates, margin, CI, direction."""

from __future__ import annotations

import json

import pytest

from audio_synth_core.compare.promotion import Decision, decide_promotion, decision_id
from audio_synth_core.compare.table import GateStats
from audio_synth_core.config.compare import parse_compare_config

from .conftest import OK_GATES, config, decision_table

ALL_GATES = {
    "min_pass_rate": 0.9,
    "max_privacy_flags": 0,
    "no_four_fifths_flag": True,
    "max_generation_failures": 0,
}


@pytest.mark.parametrize(
    ("case", "metric", "table", "gates", "required", "promote", "rule", "reason_has"),
    [
        (
            "wins by margin",
            "wer",
            decision_table(-0.10, -0.15, -0.05),
            OK_GATES,
            ALL_GATES,
            True,
            "promote",
            "excludes 0",
        ),
        (
            "wins, no gates",
            "wer",
            decision_table(-0.10, -0.15, -0.05),
            None,
            {},
            True,
            "promote",
            "no gates required",
        ),
        (
            "within margin",
            "wer",
            decision_table(-0.03, -0.05, -0.01),
            OK_GATES,
            {},
            False,
            "margin",
            "less than the margin 0.05",
        ),
        (
            "worse",
            "wer",
            decision_table(0.10, 0.05, 0.15),
            OK_GATES,
            {},
            False,
            "margin",
            "does not improve",
        ),
        (
            "ci crosses 0",
            "wer",
            decision_table(-0.10, -0.25, 0.02),
            OK_GATES,
            {},
            False,
            "ci",
            "includes 0",
        ),
        (
            "no ci",
            "wer",
            decision_table(-0.10, None, None, n=1),
            OK_GATES,
            {},
            False,
            "ci",
            "is undefined",
        ),
        (
            "pass rate gate",
            "wer",
            decision_table(-0.10, -0.15, -0.05),
            GateStats(20, 0, 0.70, 0, (), ("kind",)),
            ALL_GATES,
            False,
            "gate:min_pass_rate",
            "pass rate 0.700",
        ),
        (
            "privacy gate",
            "wer",
            decision_table(-0.10, -0.15, -0.05),
            GateStats(20, 0, 0.95, 2, (), ("kind",)),
            ALL_GATES,
            False,
            "gate:max_privacy_flags",
            "2 prompts resemble",
        ),
        (
            "four-fifths gate",
            "wer",
            decision_table(-0.10, -0.15, -0.05),
            GateStats(20, 0, 0.95, 0, ("four-fifths rule: kind ...",), ("kind",)),
            ALL_GATES,
            False,
            "gate:no_four_fifths_flag",
            "four-fifths rule: kind",
        ),
        (
            "four-fifths not evaluable",
            "wer",
            decision_table(-0.10, -0.15, -0.05),
            GateStats(20, 0, 0.95, 0),
            {"no_four_fifths_flag": True},
            False,
            "gate:no_four_fifths_flag",
            "not evaluable",
        ),
        (
            "generation failures gate",
            "wer",
            decision_table(-0.10, -0.15, -0.05),
            GateStats(20, 3, 0.95, 0, (), ("kind",)),
            ALL_GATES,
            False,
            "gate:max_generation_failures",
            "3 prompts failed",
        ),
        (
            "gate not measured",
            "wer",
            decision_table(-0.10, -0.15, -0.05),
            None,
            {"min_pass_rate": 0.9},
            False,
            "gate:min_pass_rate",
            "not measured",
        ),
        (
            "higher is better, wins",
            "snr_db",
            decision_table(3.0, 1.0, 5.0, metric="snr_db"),
            OK_GATES,
            {},
            True,
            "promote",
            "higher is better",
        ),
        (
            "higher is better, lower",
            "snr_db",
            decision_table(-3.0, -5.0, -1.0, metric="snr_db"),
            OK_GATES,
            {},
            False,
            "margin",
            "does not improve",
        ),
        (
            "higher, ci crosses 0",
            "snr_db",
            decision_table(3.0, -0.5, 6.0, metric="snr_db"),
            OK_GATES,
            {},
            False,
            "ci",
            "includes 0",
        ),
        (
            "metric missing",
            "wer",
            decision_table(-0.1, -0.15, -0.05, metric="cer"),
            OK_GATES,
            {},
            False,
            "missing",
            "no wer row",
        ),
    ],
)
def test_decide_promotion(case, metric, table, gates, required, promote, rule, reason_has) -> None:
    margin = 1.0 if metric == "snr_db" else 0.05
    cfg = parse_compare_config(
        config(
            metric={"name": metric, "margin": margin},
            promotion={
                "model_name": "m",
                "challenger": "challenger",
                "incumbent": "champion",
                "require_gates": required,
            },
        )
    )
    decision = decide_promotion(table, cfg, {"challenger": gates} if gates else None)
    assert isinstance(decision, Decision)
    assert (decision.promote, decision.rule) == (promote, rule), decision.reason
    assert reason_has in decision.reason
    assert decision.reason.startswith("promote" if promote else "keep")
    assert json.dumps(decision.to_dict())  # JSON-safe for MLflow and decision.json


def test_no_promotion_configured() -> None:
    cfg = parse_compare_config(config(promotion=None))
    decision = decide_promotion(decision_table(-0.1, -0.15, -0.05), cfg)
    assert (decision.promote, decision.rule) == (False, "no_promotion")


def test_decision_id_follows_the_rule_not_the_candidates() -> None:
    cfg = parse_compare_config(config())
    assert decision_id(cfg) == decision_id(parse_compare_config(config()))
    assert len(decision_id(cfg)) == 12
    wider = parse_compare_config(config(metric={"name": "wer", "margin": 0.1}))
    assert decision_id(wider) != decision_id(cfg)
    renamed = parse_compare_config(config(name="other"))
    assert decision_id(renamed) == decision_id(cfg)
