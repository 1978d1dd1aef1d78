"""A stored run assessed part by part gives what the whole frame gives, in bounded memory.

The run has four parts (the last one not validated). Expected values are computed with pandas
over the whole joined table (``runs.read_items``); the contract is checked one part per GX
chunk, so a violation in a later part, or one that spans parts, must still be found.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from audio_synth_core.assessment import contract_parts, run_table
from audio_synth_core.assessment.assess import assess, assess_stored, write_reports
from audio_synth_core.assessment.contract import check_contract
from audio_synth_core.assessment.fairness import flatten_attributes, metric_columns
from audio_synth_core.assessment.run_table import PER_ITEM, read_run
from audio_synth_core.config.models import ValidationConfig
from audio_synth_core.pipeline import runs
from audio_synth_core.store import layout
from audio_synth_core.store.schema import ITEM_SCHEMA
from audio_synth_core.store.storage import Store
from tests.core.assessment.test_contract import METRIC_FIELDS, make_metadata

RUN_ID = "run-parts"
SIZES = (80, 80, 60, 30)  # the last part has no validation part
BETWEEN = "expect_column_values_to_be_between"
UNIQUE = "expect_column_values_to_be_unique"


def _write_run(store: Store, meta: pd.DataFrame, *extra: pa.Field) -> None:
    val_schema = pa.schema([ITEM_SCHEMA.field("id"), *METRIC_FIELDS, *extra])
    start = 0
    for i, n in enumerate(SIZES):
        part = meta.iloc[start : start + n]
        items = pa.Table.from_pandas(part[ITEM_SCHEMA.names], ITEM_SCHEMA, preserve_index=False)
        store.write_table(f"{layout.items_dir(RUN_ID)}/part-{i:05d}.parquet", items)
        if i < len(SIZES) - 1:
            val = pa.Table.from_pandas(part[val_schema.names], val_schema, preserve_index=False)
            store.write_table(f"{layout.validation_dir(RUN_ID)}/part-{i:05d}.parquet", val)
        start += n


def _metadata() -> pd.DataFrame:
    meta = make_metadata(sum(SIZES), seed=3, fail_share=0.1)
    meta["audio_path"] = [layout.audio(i, "flac") for i in meta["id"]]
    return meta


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(str(tmp_path / "out"))
    _write_run(store, _metadata())
    return store


CFG = ValidationConfig(n_boot=100, gate={"min_pass_rate": 0.5}, max_duration_s=60)


@pytest.mark.parametrize("rows", [1, 100, 10_000])  # one part, a few, all at once
def test_parts_join_like_the_whole_run(store, rows):
    whole = runs.read_items(store, RUN_ID)
    parts = runs.run_parts(store, RUN_ID)
    joined = pd.concat([df for _, df in runs.iter_items(store, parts, rows)], ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole, check_dtype=False)
    assert list(joined.columns) == parts.columns


def test_assessment_matches_the_whole_frame(store, tmp_path):
    whole = runs.read_items(store, RUN_ID)
    flat = flatten_attributes(whole)
    table, got = assess_stored(store, RUN_ID, CFG, str(tmp_path / "docs"))

    # The bounded frame: numbers and labels only, one row per item.
    assert len(table.frame) == len(whole) and not PER_ITEM & set(table.frame.columns)
    kinds = {c: table.frame[c].dtype for c in table.frame.columns}
    assert all(
        isinstance(t, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(t)
        for t in kinds.values()
    ), kinds

    # Summary, computed independently over the whole table.
    passed = whole["passed"].astype(object).where(whole["passed"].notna(), False).astype(bool)
    assert got.summary["items"] == len(whole)
    assert got.summary["pass_rate"] == pytest.approx(passed.mean())
    assert got.summary["items_ok"] == int((whole["status"] == "ok").sum())
    checks = whole["failed_checks"].dropna().str.split(",").explode().value_counts()
    assert got.summary["failed_checks"] == checks.to_dict()

    # Fairness: group means, counts, pass rates, parity and coverage per attribute.
    for attr, fair in got.fairness.attributes.items():
        groups = flat[attr].fillna("unknown")
        snr = flat.groupby(groups)["snr_db"].agg(["mean", "count"])
        stats = {s.group: s for s in fair.metrics["snr_db"]}
        for g, row in snr.iterrows():
            assert stats[g].n == row["count"]
            assert stats[g].mean == pytest.approx(row["mean"], rel=1e-12)
        rates = passed.groupby(groups).mean()
        assert {s.group: s.mean for s in fair.pass_rate.groups} == pytest.approx(rates.to_dict())
        eligible = rates[groups.value_counts()[rates.index] >= 5]
        assert fair.pass_rate.ratio == pytest.approx(eligible.min() / eligible.max())
        assert fair.coverage.counts == groups.value_counts().to_dict()

    # The contract: every expectation as GX judges the whole frame.
    expected = check_contract(flat, None, max_duration_s=60)
    assert got.contract.n_rows == expected.n_rows == len(whole)
    assert [
        (r.expectation, r.column, r.success, r.unexpected_count) for r in got.contract.results
    ] == [(r.expectation, r.column, r.success, r.unexpected_count) for r in expected.results]
    assert got.contract.data_docs_index is not None

    # And the same gate and report as the in-memory path (samples aside: no audio here).
    in_memory = assess(whole, CFG, None, RUN_ID)
    assert (got.gate_passed, got.gate_reasons) == (in_memory.gate_passed, in_memory.gate_reasons)
    reports = {}
    for name, items, assessment in (("table", table, got), ("frame", whole, in_memory)):
        write_reports(store, RUN_ID, items, assessment, CFG, str(tmp_path / "docs"))
        reports[name] = json.loads(store.read_bytes(f"{layout.reports_dir(RUN_ID)}/report.json"))
    for key in ("counts", "metrics", "flagged_total", "flagged_items", "verdict"):
        assert reports["table"][key] == reports["frame"][key], key
    assert reports["table"]["flagged_total"] == int(((whole["status"] != "ok") | ~passed).sum())


def _tampered(store: Store, how: str) -> None:
    meta = _metadata()
    third = SIZES[0] + SIZES[1] + 5  # a row of the third part
    if how == "duplicate id across parts":
        meta.loc[third, "id"] = meta.loc[2, "id"]
    elif how == "snr out of range in a later part":
        ok = meta.index[(meta["status"] == "ok") & (meta.index >= SIZES[0])]
        meta.loc[ok[0], "snr_db"] = 140.0
    _write_run(store, meta)


@pytest.mark.parametrize(
    ("how", "expected", "count"),
    [
        ("duplicate id across parts", (UNIQUE, "id"), 2),
        ("snr out of range in a later part", (BETWEEN, "snr_db"), 1),
    ],
)
def test_a_violation_in_a_later_part_fails_the_contract(tmp_path, how, expected, count):
    store = Store(str(tmp_path / "out"))
    _tampered(store, how)
    # One GX chunk per part: what spans parts must be checked across chunks.
    _, contract = read_run(store, RUN_ID, str(tmp_path / "docs"), 60, chunk_rows=1)
    whole = check_contract(flatten_attributes(runs.read_items(store, RUN_ID)), None, 60)
    assert not contract.success
    assert [(r.expectation, r.column) for r in contract.failed] == [expected]
    (failed,) = contract.failed
    (reference,) = whole.failed
    assert failed.unexpected_count == reference.unexpected_count == count
    assert failed.unexpected_percent == pytest.approx(reference.unexpected_percent)
    assert failed.partial_unexpected == reference.partial_unexpected
    docs = (tmp_path / "docs" / "index.html").read_text()
    assert docs.count("rows ") >= len(SIZES)  # one validation result per chunk


def test_repeated_hashes_are_settled_by_the_ids_themselves(tmp_path, monkeypatch):
    # Every id hashes alike: only reading the ids again can tell them apart.
    monkeypatch.setattr(contract_parts, "_hashes", lambda s: np.zeros(s.notna().sum(), np.uint64))
    store = Store(str(tmp_path / "out"))
    _write_run(store, _metadata())
    _, contract = read_run(store, RUN_ID, None, 60, chunk_rows=1)
    assert contract.success
    _tampered(store, "duplicate id across parts")
    _, contract = read_run(store, RUN_ID, None, 60, chunk_rows=1)
    (failed,) = contract.failed
    assert (failed.expectation, failed.unexpected_count) == (UNIQUE, 2)


def test_columns_keep_their_kind_across_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(run_table, "MAX_LABELS", 5)
    meta = _metadata()
    first = meta.index < SIZES[0]
    meta["attributes"] = [
        json.dumps(
            {
                "gender": json.loads(a)["gender"],
                "score": i % 7,  # a number in every part: a fairness metric, as in one frame
                "age": 30 if f else "thirty",  # a number here, a string there: a label
                "title": f"title {i}",  # free text: dropped unless asked for
            }
        )
        for i, (a, f) in enumerate(zip(meta["attributes"], first, strict=True))
    ]
    meta["speaker_embedding"] = [np.full(4, i, np.float32) for i in range(len(meta))]
    store = Store(str(tmp_path / "out"))
    _write_run(store, meta, pa.field("speaker_embedding", pa.list_(pa.float32())))
    whole = flatten_attributes(runs.read_items(store, RUN_ID))

    table, _ = read_run(store, RUN_ID, None, 60, keep_labels=["gender"], chunk_rows=1)
    frame = table.frame
    assert not {"title", "text", "speaker_embedding"} & set(frame.columns)  # per-item values
    assert isinstance(frame["age"].dtype, pd.CategoricalDtype)
    assert sorted(frame["age"].astype(str).unique()) == ["30", "thirty"]
    assert frame["score"].tolist() == whole["score"].tolist()
    assert "score" in metric_columns(frame) and "score" not in table.report_frame
    # the unvalidated last part: verdicts missing, not a column of objects
    assert isinstance(frame["passed"].dtype, pd.BooleanDtype)
    assert frame["passed"].isna().sum() == SIZES[-1]
    assert frame["status"].tolist() == whole["status"].tolist()

    kept, _ = read_run(store, RUN_ID, None, 60, keep_labels=["title"], chunk_rows=1)
    assert kept.frame["title"].nunique() == len(whole)
