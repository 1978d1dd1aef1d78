"""Fairness report: four-fifths rule, bootstrap CIs, coverage balance, messy attribute values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audio_synth_core.assessment.fairness import UNKNOWN, fairness_report, flatten_attributes

SNR_MIN_DB = 20.0  # the check the synthetic items pass or fail, like a quality validator's


def make_items(
    n: int,
    seed: int = 0,
    snr_shift_db: dict[str, float] | None = None,
    accent_p: tuple[float, float] = (0.5, 0.5),
) -> pd.DataFrame:
    """Items with voice attributes in JSON and realistic metrics; ``snr_shift_db`` degrades the
    named gender's audio, so its items fail the SNR check more often."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["female", "male"], n)
    age = rng.choice(["18-30", "31-50", "51+"], n)
    accent = rng.choice(["us", "gb"], n, p=list(accent_p))
    snr = rng.normal(26.0, 4.0, n)
    for g, shift in (snr_shift_db or {}).items():
        snr[gender == g] += shift
    wer = np.clip(rng.normal(0.08, 0.04, n) + np.maximum(0, 20 - snr) * 0.01, 0, None)
    attrs = [
        json.dumps({"gender": g, "age_band": a, "accent": c})
        for g, a, c in zip(gender, age, accent, strict=True)
    ]
    return pd.DataFrame(
        {
            "id": [f"item-{i:06d}" for i in range(n)],
            "status": "ok",
            "language": "en",
            "attributes": attrs,
            "snr_db": snr,
            "wer": wer,
            "mos_ovrl": rng.normal(2.8, 0.2, n),
            "passed": snr >= SNR_MIN_DB,
            "failed_checks": np.where(snr >= SNR_MIN_DB, "", "snr"),
        }
    )


def test_flatten_attributes_adds_columns_and_keeps_existing_ones():
    df = pd.DataFrame(
        {
            "language": ["en", None, "de", "fr"],
            "attributes": [
                '{"gender": "female", "language": "xx", "tags": ["a"]}',
                '{"gender": "male", "language": "es"}',
                "not json",
                None,
            ],
        }
    )
    out = flatten_attributes(df)
    assert list(out["gender"].fillna("?")) == ["female", "male", "?", "?"]
    assert list(out["language"]) == ["en", "es", "de", "fr"]  # existing wins, nulls filled
    assert out.loc[0, "tags"] == '["a"]'
    assert "gender" not in df.columns  # a copy


def test_biased_set_raises_four_fifths_flag_naming_the_group():
    df = flatten_attributes(make_items(1200, snr_shift_db={"female": -8.0}))
    rep = fairness_report(df, ["gender", "age_band"], ["snr_db", "wer"], n_boot=200)

    parity = rep.attributes["gender"].pass_rate
    rates = {g.group: g.mean for g in parity.groups}
    assert rates["female"] < 0.8 * rates["male"]
    assert parity.flagged
    assert parity.ratio == pytest.approx(rates["female"] / rates["male"])
    assert (parity.min_group, parity.max_group) == ("female", "male")
    assert parity.below_groups == ["female"]
    assert not rep.attributes["age_band"].pass_rate.flagged
    assert any("four-fifths" in f and "female" in f for f in rep.flags)
    snr = {g.group: g for g in rep.attributes["gender"].metrics["snr_db"]}
    assert snr["female"].ci_high < snr["male"].ci_low  # the degradation is visible per metric


def test_balanced_set_is_not_flagged():
    df = flatten_attributes(make_items(1200))
    rep = fairness_report(df, ["gender", "age_band", "accent"], ["snr_db", "wer"], n_boot=200)
    assert rep.flags == []
    for attr in ("gender", "age_band", "accent"):
        p = rep.attributes[attr].pass_rate
        assert not p.flagged and p.ratio > 0.85


def test_bootstrap_cis_contain_the_true_mean_and_narrow_with_n():
    rng = np.random.default_rng(7)
    sizes = {"n20": 20, "n200": 200, "n2000": 2000}
    groups = np.concatenate([[g] * n for g, n in sizes.items()])
    df = pd.DataFrame({"size": groups, "snr_db": rng.normal(25.0, 4.0, len(groups))})
    rep = fairness_report(df, ["size"], ["snr_db"], n_boot=1000, seed=3)

    stats = {g.group: g for g in rep.attributes["size"].metrics["snr_db"]}
    widths = {}
    for g, n in sizes.items():
        s = stats[g]
        assert s.n == n
        assert s.ci_low < 25.0 < s.ci_high
        assert s.ci_low < s.mean < s.ci_high
        widths[n] = s.ci_high - s.ci_low
        # percentile bootstrap ~ normal CI of the mean: 2 * 1.96 * sigma / sqrt(n)
        assert widths[n] == pytest.approx(2 * 1.96 * 4.0 / np.sqrt(n), rel=0.3)
    assert widths[20] > widths[200] > widths[2000]


def test_bootstrap_ci_coverage_is_near_nominal():
    rng = np.random.default_rng(11)
    k, n = 60, 40
    df = pd.DataFrame(
        {"grp": np.repeat([f"g{i:02d}" for i in range(k)], n), "wer": rng.gamma(2.0, 0.05, k * n)}
    )
    rep = fairness_report(df, ["grp"], ["wer"], n_boot=500, seed=0)
    true_mean = 2.0 * 0.05
    hits = sum(g.ci_low < true_mean < g.ci_high for g in rep.attributes["grp"].metrics["wer"])
    assert hits / k >= 0.85


def test_results_are_deterministic_for_a_seed():
    df = flatten_attributes(make_items(300))
    a = fairness_report(df, ["gender"], ["snr_db"], n_boot=100, seed=5).to_dict()
    b = fairness_report(df, ["gender"], ["snr_db"], n_boot=100, seed=5).to_dict()
    c = fairness_report(df, ["gender"], ["snr_db"], n_boot=100, seed=6).to_dict()
    assert a == b
    assert a != c


def test_coverage_flags_an_imbalanced_attribute():
    df = flatten_attributes(make_items(1000, accent_p=(0.94, 0.06)))
    rep = fairness_report(df, ["gender", "accent"], ["snr_db"], n_boot=50)
    cov = rep.attributes["accent"].coverage
    assert cov.flagged and cov.under_represented == ["gb"]
    assert cov.max_min_ratio > 10
    assert cov.normalized_entropy < 0.5
    assert cov.shares["gb"] == pytest.approx(cov.counts["gb"] / 1000)
    gender = rep.attributes["gender"].coverage
    assert not gender.flagged and gender.normalized_entropy > 0.99
    assert any(f.startswith("coverage: accent") for f in rep.flags)


def test_missing_values_small_groups_and_unusable_attributes():
    df = flatten_attributes(make_items(400))
    df.loc[df.index[:30], "gender"] = None  # missing -> "unknown"
    df.loc[df.index[30:33], "gender"] = "nonbinary"  # 3 items: too small for a CI
    df.loc[df.index[30:33], "passed"] = False  # 0 of 3 passing must not flag the run
    df.loc[df.index[40:60], "wer"] = np.nan  # a metric missing for some items
    rep = fairness_report(
        df, ["gender", "language", "speaker"], ["snr_db", "wer", "not_a_metric"], n_boot=100
    )

    assert rep.skipped == {"language": "only one group (en)", "speaker": "column not present"}
    g = rep.attributes["gender"]
    assert set(g.metrics) == {"snr_db", "wer"}
    by = {s.group: s for s in g.metrics["snr_db"]}
    assert set(by) == {"female", "male", "nonbinary", UNKNOWN}
    assert by[UNKNOWN].n == 30 and by[UNKNOWN].ci_low is not None
    assert by["nonbinary"].n == 3 and by["nonbinary"].ci_low is None
    assert by["nonbinary"].mean is not None
    assert sum(s.n for s in g.metrics["wer"]) == 380
    p = g.pass_rate
    assert p.excluded_small_groups == ["nonbinary"]
    assert not p.flagged
    assert g.coverage.unknown_share == pytest.approx(30 / 400)
    assert UNKNOWN not in g.coverage.under_represented
    json.dumps(rep.to_dict(), allow_nan=False)


def test_without_passed_column_only_metrics_are_reported():
    df = flatten_attributes(make_items(200)).drop(columns=["passed"])
    rep = fairness_report(df, ["gender"], ["snr_db"], n_boot=50)
    assert rep.attributes["gender"].pass_rate is None
    assert rep.attributes["gender"].metrics["snr_db"][0].ci_low is not None


def test_empty_and_all_missing_metrics_do_not_crash():
    df = flatten_attributes(make_items(50))
    df["mos_ovrl"] = np.nan
    rep = fairness_report(df, ["gender"], ["mos_ovrl"], n_boot=20)
    stats = rep.attributes["gender"].metrics["mos_ovrl"]
    assert [(s.n, s.mean, s.ci_low) for s in stats] == [(0, None, None), (0, None, None)]
    empty = fairness_report(df.iloc[:0], ["gender"], ["snr_db"], n_boot=20)
    assert empty.attributes == {} and "gender" in empty.skipped
