"""Generator comparison: config, prompts, evaluation with real espeak + validators, the paired
bootstrap table, the promotion rule (table-driven) and the report."""

from __future__ import annotations

import json
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audio_synth_core import audio
from audio_synth_core.compare.comparison import (
    TABLE_COLUMNS,
    CompareConfig,
    Decision,
    GateStats,
    compare_table,
    comparison_report_html,
    decide_promotion,
    evaluate_candidate,
    gate_stats,
    load_compare_config,
    load_prompts,
    parse_compare_config,
)
from audio_synth_core.errors import ConfigError
from audio_synth_core.validators.base import build_validator
from tests.factories import speech

REPO = Path(__file__).resolve().parents[2]
NEURAL = {"name": "neural", "params": {"model_uri": "models:/m@champion"}}
CHALLENGER = {"name": "neural", "params": {"model_uri": "models:/m/2"}}


def config(**overrides) -> dict:
    cfg = {
        "candidates": [
            {"label": "champion", "generator": NEURAL},
            {"label": "challenger", "generator": CHALLENGER},
        ],
        "metric": {"name": "wer", "margin": 0.05},
        "promotion": {"model_name": "m", "challenger": "challenger", "incumbent": "champion"},
    }
    cfg.update(overrides)
    return cfg


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"candidates": [{"label": "a", "generator": NEURAL}]}, "candidates"),
        (
            {
                "candidates": [
                    {"label": "a", "generator": NEURAL},
                    {"label": "a", "generator": CHALLENGER},
                ]
            },
            "repeated: a",
        ),
        (
            {
                "candidates": [
                    {"label": "a b", "generator": NEURAL},
                    {"label": "c", "generator": CHALLENGER},
                ]
            },
            "candidates.0.label",
        ),
        (
            {
                "candidates": [
                    {"label": "a", "generator": {"name": "nope"}},
                    {"label": "c", "generator": CHALLENGER},
                ]
            },
            "unknown generator 'nope'",
        ),
        ({"metric": "mos_ovrl"}, "'mos_ovrl' is not measured"),
        ({"metric": {"name": "duration_s"}}, "metric.direction"),
        ({"metric": {"name": "wer", "margin": -1}}, "metric.margin"),
        ({"report_metrics": ["nope"]}, "'nope' is not measured"),
        (
            {"promotion": {"model_name": "m", "challenger": "x", "incumbent": "champion"}},
            "promotion.challenger: 'x'",
        ),
        (
            {"promotion": {"model_name": "m", "challenger": "champion", "incumbent": "champion"}},
            "must differ",
        ),
        (
            {
                "promotion": {
                    "model_name": "other",
                    "challenger": "challenger",
                    "incumbent": "champion",
                }
            },
            "models:/other/<version>",
        ),
        (
            {
                "promotion": {
                    "model_name": "m",
                    "challenger": "challenger",
                    "incumbent": "champion",
                    "require_gates": {"min_pass_rate": 2},
                }
            },
            "promotion.require_gates.min_pass_rate",
        ),
        ({"validation": {"gate": {"min_pass_rate": 0.5}}}, "validation.gate"),
        ({"prompts": ["a"], "prompts_path": "p.txt"}, "give one, not both"),
        ({"prompts": [""]}, "prompts.0.text"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_config_names_the_field(overrides: dict, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_compare_config(config(**overrides))
    assert named in str(err.value)


def test_direction_defaults_and_string_metric() -> None:
    assert parse_compare_config(config(metric="wer")).metric.direction == "lower"
    cfg = parse_compare_config(config(metric={"name": "snr_db"}))
    assert cfg.metric.direction == "higher"


def test_shipped_compare_config_loads() -> None:
    cfg = load_compare_config(REPO / "configs" / "compare-demo.yaml")
    assert cfg.metric.name == "wer" and cfg.promotion.model_name == "audio-synth-tts"
    assert {c.generator.params.get("rate_wpm") for c in cfg.candidates} >= {150, 190}
    assert len(load_prompts(cfg)) == 15
    # What the Python API passes to the flow (a dumped config) parses to the same config.
    assert parse_compare_config(cfg.model_dump(mode="json")) == cfg


def test_prompts_from_files_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("text,kind\nHello there.,greeting\nGood night.,farewell\n")
    (tmp_path / "p.jsonl").write_text('{"text": "One.", "language": "en-gb"}\n{"text": "Two."}\n')
    (tmp_path / "p.txt").write_text("First line.\n\nSecond line.\n")
    csv = load_prompts(parse_compare_config(config(prompts_path=str(tmp_path / "p.csv"))))
    assert [p.text for p in csv] == ["Hello there.", "Good night."] and csv[0].attributes == {
        "kind": "greeting"
    }
    jsonl = load_prompts(parse_compare_config(config(prompts_path=str(tmp_path / "p.jsonl"))))
    assert [p.language for p in jsonl] == ["en-gb", "en-us"]
    assert (
        len(load_prompts(parse_compare_config(config(prompts_path=str(tmp_path / "p.txt"))))) == 2
    )
    defaults = load_prompts(parse_compare_config(config(max_prompts=4)))
    assert len(defaults) == 4 and len({p.id for p in defaults}) == 4
    assert defaults == load_prompts(
        parse_compare_config(config(max_prompts=4))
    )  # deterministic ids
    with pytest.raises(ConfigError, match="duplicate prompt"):
        load_prompts(parse_compare_config(config(prompts=["Same.", "Same."])))
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompts(parse_compare_config(config(prompts_path=str(tmp_path / "missing.csv"))))


# ----------------------------------------------------------------------------- evaluation


def test_evaluate_candidate_with_real_espeak_and_validators() -> None:
    cfg = parse_compare_config(
        config(
            prompts=["Call me back.", "The red door.", {"text": "Bonjour.", "language": "xx-nope"}],
            candidates=[
                {"label": "slow", "generator": {"name": "espeak", "params": {"rate_wpm": 140}}},
                {"label": "fast", "generator": {"name": "espeak", "params": {"rate_wpm": 200}}},
            ],
            promotion=None,
        )
    )
    prompts = load_prompts(cfg)
    validators = [build_validator("quality"), build_validator("intelligibility")]
    stored: dict[str, bytes] = {}

    def sink(name: str, data: bytes) -> str:
        stored[name] = data
        return f"mem://{name}"

    frames = {
        c.label: evaluate_candidate(c, prompts, validators, audio_sink=sink) for c in cfg.candidates
    }
    slow = frames["slow"]
    assert list(slow["prompt_id"]) == [p.id for p in prompts]
    ok = slow[slow["status"] == "ok"]
    assert len(ok) == 2 and ok["passed"].all() and (ok["wer"] <= 0.4).all()
    # Both candidates store under the same per-prompt names (the task gives each its own folder).
    assert ok["audio_uri"].str.startswith("mem://").all() and len(stored) == 2
    failed = slow.iloc[2]
    assert failed["status"] == "failed" and not failed["passed"] and "xx-nope" in failed["error"]
    assert failed["failed_checks"] == "generation"
    assert json.loads(slow["generator_params"].iloc[0])["rate_wpm"] == 140
    # Slower speech is longer on every prompt: the paired difference says so with certainty.
    table = compare_table(frames, ["duration_s", "pass_rate"], n_boot=200, reference="slow")
    dur = table[(table["candidate"] == "fast") & (table["metric"] == "duration_s")].iloc[0]
    assert dur["n_paired"] == 2 and dur["diff_mean"] < 0 and dur["diff_ci_high"] < 0
    rate = table[(table["candidate"] == "fast") & (table["metric"] == "pass_rate")].iloc[0]
    assert rate["n"] == 3 and rate["mean"] == pytest.approx(2 / 3)  # the failed prompt counts


# ----------------------------------------------------------------------------- bootstrap table


def _frames(a: np.ndarray, b: np.ndarray, metric: str = "wer") -> dict[str, pd.DataFrame]:
    ids = [f"p{i}" for i in range(len(a))]
    return {
        "a": pd.DataFrame({"prompt_id": ids, metric: a, "passed": True}),
        "b": pd.DataFrame({"prompt_id": ids, metric: b, "passed": True}),
    }


def _synthetic(rng: np.random.Generator, n: int, delta: float) -> tuple[np.ndarray, np.ndarray]:
    # Prompts differ a lot (difficulty), candidates differ by delta: only pairing sees delta.
    difficulty = rng.normal(0.3, 0.2, n)
    return difficulty + rng.normal(0, 0.02, n), difficulty + delta + rng.normal(0, 0.02, n)


def test_paired_bootstrap_ci_contains_the_true_difference() -> None:
    a, b = _synthetic(np.random.default_rng(1), 30, -0.05)
    table = compare_table(_frames(a, b), ["wer"], n_boot=2000, seed=0)
    assert list(table.columns) == TABLE_COLUMNS
    ref, other = table.iloc[0], table.iloc[1]
    assert ref["candidate"] == "a" and pd.isna(ref["diff_mean"])  # the reference has no difference
    assert other["n_paired"] == 30 and other["diff_mean"] == pytest.approx(float(np.mean(b - a)))
    assert other["diff_ci_low"] < -0.05 < other["diff_ci_high"] < 0
    # Unpaired, the two means' CIs overlap heavily; the paired CI is far narrower.
    assert other["ci_low"] < ref["ci_high"]
    paired_width = other["diff_ci_high"] - other["diff_ci_low"]
    assert paired_width < 0.25 * (ref["ci_high"] - ref["ci_low"])
    # Same seed, same table.
    pd.testing.assert_frame_equal(table, compare_table(_frames(a, b), ["wer"], n_boot=2000, seed=0))


def test_paired_bootstrap_coverage_is_near_nominal() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    for i in range(100):
        a, b = _synthetic(rng, 30, 0.03)
        row = compare_table(_frames(a, b), ["wer"], n_boot=400, seed=i).iloc[1]
        covered += row["diff_ci_low"] <= 0.03 <= row["diff_ci_high"]
    assert covered >= 85  # nominal 95; percentile bootstrap at n=30 runs a little narrow


def test_missing_values_shrink_the_pairs_not_the_table() -> None:
    a = np.array([0.1, 0.2, np.nan, 0.4])
    b = np.array([0.1, np.nan, 0.3, 0.2])
    frames = _frames(a, b)
    frames["b"] = frames["b"].iloc[[0, 1, 2]]  # and one prompt missing entirely
    row = compare_table(frames, ["wer"], n_boot=100).iloc[1]
    assert row["n"] == 2 and row["n_paired"] == 1 and row["diff_mean"] == pytest.approx(0.0)
    assert pd.isna(row["diff_ci_low"])  # one pair: no interval


# ----------------------------------------------------------------------------- the decision


def _table(
    diff: float | None, lo: float | None, hi: float | None, metric: str = "wer", n: int = 20
) -> pd.DataFrame:
    nan = float("nan")
    f = lambda v: nan if v is None else v  # noqa: E731
    rows = [
        ["champion", metric, n, 0.3, 0.25, 0.35, "champion", None, nan, nan, nan],
        ["challenger", metric, n, 0.3 + f(diff), nan, nan, "champion", n, f(diff), f(lo), f(hi)],
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


OK_GATES = GateStats(
    n_items=20, n_failed=0, pass_rate=0.95, privacy_flags=0, parity_attributes=("kind",)
)
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
            _table(-0.10, -0.15, -0.05),
            OK_GATES,
            ALL_GATES,
            True,
            "promote",
            "excludes 0",
        ),
        (
            "wins, no gates",
            "wer",
            _table(-0.10, -0.15, -0.05),
            None,
            {},
            True,
            "promote",
            "no gates required",
        ),
        (
            "within margin",
            "wer",
            _table(-0.03, -0.05, -0.01),
            OK_GATES,
            {},
            False,
            "margin",
            "less than the margin 0.05",
        ),
        (
            "worse",
            "wer",
            _table(0.10, 0.05, 0.15),
            OK_GATES,
            {},
            False,
            "margin",
            "does not improve",
        ),
        (
            "ci crosses 0",
            "wer",
            _table(-0.10, -0.25, 0.02),
            OK_GATES,
            {},
            False,
            "ci",
            "includes 0",
        ),
        ("no ci", "wer", _table(-0.10, None, None, n=1), OK_GATES, {}, False, "ci", "is undefined"),
        (
            "pass rate gate",
            "wer",
            _table(-0.10, -0.15, -0.05),
            GateStats(20, 0, 0.70, 0, (), ("kind",)),
            ALL_GATES,
            False,
            "gate:min_pass_rate",
            "pass rate 0.700",
        ),
        (
            "privacy gate",
            "wer",
            _table(-0.10, -0.15, -0.05),
            GateStats(20, 0, 0.95, 2, (), ("kind",)),
            ALL_GATES,
            False,
            "gate:max_privacy_flags",
            "2 prompts resemble",
        ),
        (
            "four-fifths gate",
            "wer",
            _table(-0.10, -0.15, -0.05),
            GateStats(20, 0, 0.95, 0, ("four-fifths rule: kind ...",), ("kind",)),
            ALL_GATES,
            False,
            "gate:no_four_fifths_flag",
            "four-fifths rule: kind",
        ),
        (
            "four-fifths not evaluable",
            "wer",
            _table(-0.10, -0.15, -0.05),
            GateStats(20, 0, 0.95, 0),
            {"no_four_fifths_flag": True},
            False,
            "gate:no_four_fifths_flag",
            "not evaluable",
        ),
        (
            "generation failures gate",
            "wer",
            _table(-0.10, -0.15, -0.05),
            GateStats(20, 3, 0.95, 0, (), ("kind",)),
            ALL_GATES,
            False,
            "gate:max_generation_failures",
            "3 prompts failed",
        ),
        (
            "gate not measured",
            "wer",
            _table(-0.10, -0.15, -0.05),
            None,
            {"min_pass_rate": 0.9},
            False,
            "gate:min_pass_rate",
            "not measured",
        ),
        (
            "higher is better, wins",
            "snr_db",
            _table(3.0, 1.0, 5.0, metric="snr_db"),
            OK_GATES,
            {},
            True,
            "promote",
            "higher is better",
        ),
        (
            "higher is better, lower",
            "snr_db",
            _table(-3.0, -5.0, -1.0, metric="snr_db"),
            OK_GATES,
            {},
            False,
            "margin",
            "does not improve",
        ),
        (
            "higher, ci crosses 0",
            "snr_db",
            _table(3.0, -0.5, 6.0, metric="snr_db"),
            OK_GATES,
            {},
            False,
            "ci",
            "includes 0",
        ),
        (
            "metric missing",
            "wer",
            _table(-0.1, -0.15, -0.05, metric="cer"),
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
    decision = decide_promotion(_table(-0.1, -0.15, -0.05), cfg)
    assert (decision.promote, decision.rule) == (False, "no_promotion")


def test_gate_stats_flags_four_fifths_and_privacy() -> None:
    kinds = ["q"] * 5 + ["s"] * 5
    frame = pd.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(10)],
            "attributes": [json.dumps({"kind": k}) for k in kinds],
            "status": ["ok"] * 9 + ["failed"],
            "passed": [True] * 5 + [True, False, False, False, False],
            "failed_checks": [None] * 5
            + [None, "privacy_similarity", "max_wer", "max_wer", "generation"],
        }
    )
    stats = gate_stats(frame, n_boot=50)
    assert stats.n_items == 10 and stats.n_failed == 1 and stats.pass_rate == pytest.approx(0.6)
    assert stats.privacy_flags == 1 and stats.parity_attributes == ("kind",)
    assert len(stats.four_fifths_flags) == 1 and "kind" in stats.four_fifths_flags[0]
    assert gate_stats(frame.iloc[:4], n_boot=50).parity_attributes == ()  # groups too small


# ----------------------------------------------------------------------------- report


def test_report_is_self_contained_and_caps_players() -> None:
    a, b = _synthetic(np.random.default_rng(3), 12, -0.1)
    table = compare_table(_frames(a, b), ["wer", "pass_rate"], n_boot=200, reference="a")
    clip, rate = speech("Call me back.")
    data = audio.encode(clip, rate)
    samples = [
        {
            "prompt_id": f"p{i}",
            "text": f"prompt <{i}>",
            "clips": {
                "a": {
                    "audio_bytes": data,
                    "mime": "audio/flac",
                    "metrics": {"wer": a[i], "passed": True},
                },
                "b": {"error": "GenerationError: empty text"},
            },
        }
        for i in range(5)
    ]
    cfg: CompareConfig = parse_compare_config(
        config(
            candidates=[
                {"label": "a", "generator": NEURAL},
                {"label": "b", "generator": CHALLENGER},
            ],
            promotion={"model_name": "m", "challenger": "b", "incumbent": "a"},
        )
    )
    decision = decide_promotion(table, cfg)
    html = comparison_report_html(table, decision, samples, {"b": OK_GATES}, max_prompts=3)
    assert html.startswith("<!DOCTYPE html>") and "http" not in html.split("<body>", 1)[1]
    assert html.count("<audio") == 3 and "2 more prompts not shown" in html
    assert html.count("data:image/png;base64") == 2  # means and paired differences
    assert "prompt &lt;0&gt;" in html and "GenerationError: empty text" in html
    assert html_escape(decision.reason) in html and "PROMOTE" in html
