"""Leak-free splits: disjoint by speaker, text and document, deterministic, and a check that fails
on a planted leak."""

from __future__ import annotations

import pandas as pd
import pytest

from audio_synth_core.config.dataset import SplitConfig, parse_spec
from audio_synth_core.dataset import splits
from audio_synth_core.dataset.plan import build_plan
from audio_synth_core.errors import ConfigError
from audio_synth_core.generators.espeak import EspeakGenerator
from tests.core.dataset.specs import SENTENCES, spec

ALL = {
    "ratios": {"train": 0.6, "dev": 0.2, "test": 0.2},
    "disjoint_by": ["speaker", "text", "source"],
}


def _plan(**changes):
    return build_plan(parse_spec(spec(**changes)), EspeakGenerator())


def _sentences_plan(seed: int = 3):
    texts = [{"name": "corpus", "kind": "lines", "lines": SENTENCES}]
    return _plan(texts=texts, splits=ALL, seed=seed, size={"utterances": 200})


def test_split_sizes_follow_the_ratios_and_fill_every_split():
    cfg = SplitConfig(ratios={"train": 0.8, "dev": 0.1, "test": 0.1})
    assert splits.split_sizes(100, cfg).tolist() == [80, 10, 10]
    assert splits.split_sizes(4, cfg, minimum=1).tolist() == [2, 1, 1]
    with pytest.raises(ConfigError, match="2 speakers cannot fill 3 splits"):
        splits.split_sizes(2, cfg, minimum=1, what="speakers")


def test_plan_is_disjoint_by_speaker_text_and_document():
    plan = _sentences_plan()
    speech = plan.rows[plan.rows["kind"] == "speech"]
    for column in ("speaker_id", "text", "source_doc"):
        owners = speech.groupby(column)["split"].nunique()
        assert (owners == 1).all(), column
    check = splits.leak_check(plan.rows)
    assert check["totals"] == {"speaker": 0, "text": 0, "source": 0}
    assert set(speech["split"]) == {"train", "dev", "test"}
    splits.require_no_leak(check, ALL["disjoint_by"])


def test_splits_are_deterministic_from_the_seed():
    a, b, c = _sentences_plan(), _sentences_plan(), _sentences_plan(seed=11)
    key = ["text", "split"]
    pairs = lambda p: set(map(tuple, p.rows[key].drop_duplicates().to_numpy()))  # noqa: E731
    assert pairs(a) == pairs(b)
    assert pairs(a) != pairs(c)


def test_leak_check_fails_on_a_planted_leak():
    rows = _sentences_plan().rows.copy()
    test_rows = rows.index[rows["split"] == "test"]
    train_row = rows[rows["split"] == "train"].iloc[0]
    rows.loc[test_rows[0], "speaker_id"] = train_row["speaker_id"]  # a train speaker in test
    rows.loc[test_rows[1], "text"] = train_row["text"].upper() + "!"  # same text, other casing
    check = splits.leak_check(rows)
    assert check["totals"]["speaker"] == 1 and check["totals"]["text"] == 1
    assert check["pairs"]["speaker:train/test"] == 1
    with pytest.raises(splits.LeakError, match="speaker"):
        splits.require_no_leak(check, ["speaker", "text"])
    splits.require_no_leak(check, ["source"])  # not a dimension kept disjoint here


def test_too_few_texts_for_text_disjoint_splits_is_a_clear_error():
    texts = [{"name": "two", "kind": "lines", "lines": ["one line", "another line"]}]
    with pytest.raises(ConfigError, match="texts of source 'two'"):
        _plan(texts=texts, splits=ALL)


def test_speaker_split_is_stratified_by_group():
    ids = [f"s{i}" for i in range(12)]
    groups = ["f"] * 6 + ["m"] * 6
    cfg = SplitConfig(ratios={"train": 0.5, "dev": 0.25, "test": 0.25})
    got = splits.assign_speakers(ids, groups, cfg, seed=0)
    table = pd.crosstab(pd.Series(groups, name="g"), pd.Series(got, name="split"))
    assert table.loc["f"].tolist() == [3, 2, 1] or table.loc["f"].sum() == 6
    assert abs(table.loc["f", 0] - table.loc["m", 0]) <= 1
