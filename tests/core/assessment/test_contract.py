"""The data contract: a realistic metadata table passes; each kind of tampering fails by name."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from audio_synth_core.assessment.contract import ContractResult, check_contract, metric_ranges
from audio_synth_core.store.schema import ITEM_SCHEMA

VOICES = [
    ("en-us+f3", "female", "18-30", "us"),
    ("en-us+m1", "male", "31-50", "us"),
    ("en-gb+f2", "female", "51+", "gb"),
    ("en-gb+m3", "male", "18-30", "gb"),
    ("en-us+m7", "male", "51+", "us"),
    ("en-us+f5", "female", "31-50", "us"),
]
METRIC_FIELDS = [
    pa.field("snr_db", pa.float64()),
    pa.field("wer", pa.float64()),
    pa.field("cer", pa.float64()),
    pa.field("mos_ovrl", pa.float64()),
    pa.field("max_similarity", pa.float64()),
    pa.field("passed", pa.bool_()),
    pa.field("failed_checks", pa.string()),
]


def make_metadata(n: int = 200, seed: int = 0, fail_share: float = 0.05) -> pd.DataFrame:
    """Item metadata as the pipeline stores it: built as Arrow with the item schema plus metric
    columns, then read into pandas the way a Parquet read does (dtypes included)."""
    rng = np.random.default_rng(seed)
    voice_idx = rng.integers(0, len(VOICES), n)
    failed = rng.random(n) < fail_share
    duration = rng.uniform(1.5, 12.0, n)
    rate = 22050
    rows = []
    for i in range(n):
        voice, gender, age, accent = VOICES[voice_idx[i]]
        ok = not failed[i]
        item_id = hashlib.sha256(f"item-{seed}-{i}".encode()).hexdigest()[:24]
        snr = float(rng.normal(28, 4))
        wer = float(abs(rng.normal(0.08, 0.05)))
        sim = float(rng.uniform(0.3, 0.8))
        checks = [
            c for c, bad in (("snr", snr < 20), ("wer", wer > 0.2), ("privacy", sim > 0.75)) if bad
        ]
        rows.append(
            {
                "id": item_id,
                "catalog_id": f"sku-{i // 2:05d}",
                "chunk_index": i % 2,
                "text": "The quick brown fox jumps over the lazy dog.",
                "voice": voice,
                "language": "en",
                "generator": "espeak",
                "generator_version": "1.52",
                "generator_params": json.dumps({"rate_wpm": 175}),
                "seed": int(rng.integers(0, 2**31)),
                "attributes": json.dumps({"gender": gender, "age_band": age, "accent": accent}),
                "sample_rate_hz": rate if ok else None,
                "num_samples": int(duration[i] * rate) if ok else None,
                "duration_s": float(int(duration[i] * rate) / rate) if ok else None,
                "audio_uri": f"file:///runs/r1/audio/{item_id}.flac" if ok else None,
                "audio_format": "flac" if ok else None,
                "sha256": hashlib.sha256(item_id.encode()).hexdigest() if ok else None,
                "status": "ok" if ok else "failed",
                "error": None if ok else "GenerationError: espeak returned no audio",
                "peak_dbfs": float(-rng.uniform(1.0, 6.0)) if ok else None,
                "rms_dbfs": float(rng.uniform(-24, -18)) if ok else None,
                "clipping_ratio": 0.0 if ok else None,
                "silence_ratio": float(rng.uniform(0.05, 0.3)) if ok else None,
                "integrated_lufs": float(rng.uniform(-23, -16)) if ok else None,
                "change": "new",
                "run_id": "run-0001",
                "snr_db": snr if ok else None,
                "wer": wer if ok else None,
                "cer": wer * 0.6 if ok else None,
                "mos_ovrl": float(rng.uniform(2.4, 3.2)) if ok else None,
                "max_similarity": sim if ok else None,
                "passed": bool(ok and not checks),
                "failed_checks": ",".join(checks) if ok else "generation",
            }
        )
    schema = pa.schema([*ITEM_SCHEMA, *METRIC_FIELDS])
    return pa.Table.from_pylist(rows, schema=schema).to_pandas()


def _failed(result: ContractResult) -> set[tuple[str, str | None]]:
    return {(r.expectation, r.column) for r in result.failed}


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return make_metadata(200)


def test_good_table_passes_and_writes_data_docs_only_into_docs_dir(good, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # GX must not drop gx/ or uncommitted/ folders into the cwd
    docs = tmp_path / "docs"

    result = check_contract(good, str(docs), max_duration_s=60)

    assert result.success, [r for r in result.failed]
    assert result.n_rows == 200
    assert len(result.results) > 30
    assert result.data_docs_index == str(docs / "index.html")
    assert os.path.exists(result.data_docs_index)
    assert "item_metadata_contract" in (docs / "index.html").read_text()
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "docs"]
    json.dumps(result.to_dict())


def test_without_docs_dir_nothing_is_written(good, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = check_contract(good, None)
    assert result.success
    assert result.data_docs_index is None
    assert list(tmp_path.iterdir()) == []


def _tamper(df: pd.DataFrame, how: str) -> pd.DataFrame:
    df = df.copy()
    ok = df.index[df["status"] == "ok"]
    if how == "duplicate id":
        df.loc[ok[1], "id"] = df.loc[ok[0], "id"]
    elif how == "null status":
        df.loc[ok[0], "status"] = None
    elif how == "duration too long":
        df.loc[ok[0], "duration_s"] = 3600.0
    elif how == "zero duration":
        df.loc[ok[0], "duration_s"] = 0.0
    elif how == "bad status":
        df.loc[ok[0], "status"] = "done"
    elif how == "missing column":
        df = df.drop(columns=["sha256"])
    elif how == "bad sha256":
        df.loc[ok[0], "sha256"] = "not-a-hash"
    elif how == "ok row without audio":
        df.loc[ok[0], "audio_uri"] = None
    elif how == "positive peak":
        df.loc[ok[0], "peak_dbfs"] = 0.5
    elif how == "ratio above one":
        df.loc[ok[0], "silence_ratio"] = 1.5
    elif how == "negative wer":
        df.loc[ok[0], "wer"] = -0.1
    elif how == "snr beyond the wada table":
        df.loc[ok[0], "snr_db"] = 140.0
    elif how == "similarity above one":
        df.loc[ok[0], "max_similarity"] = 1.2
    elif how == "odd sample rate":
        df.loc[ok[0], "sample_rate_hz"] = 12345.0
    elif how == "bad format":
        df.loc[ok[0], "audio_format"] = "mp3"
    elif how == "numeric text column":
        df["generator"] = 1.0
    return df


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("duplicate id", {("expect_column_values_to_be_unique", "id")}),
        (
            "null status",
            {("expect_column_values_to_not_be_null", "status")},
        ),
        ("duration too long", {("expect_column_values_to_be_between", "duration_s")}),
        ("zero duration", {("expect_column_values_to_be_between", "duration_s")}),
        ("bad status", {("expect_column_values_to_be_in_set", "status")}),
        ("bad sha256", {("expect_column_values_to_match_regex", "sha256")}),
        ("ok row without audio", {("expect_column_values_to_not_be_null", "audio_uri")}),
        ("positive peak", {("expect_column_values_to_be_between", "peak_dbfs")}),
        ("ratio above one", {("expect_column_values_to_be_between", "silence_ratio")}),
        # metric ranges come from the validators' fields (valid_range)
        ("negative wer", {("expect_column_values_to_be_between", "wer")}),
        ("snr beyond the wada table", {("expect_column_values_to_be_between", "snr_db")}),
        ("similarity above one", {("expect_column_values_to_be_between", "max_similarity")}),
        ("odd sample rate", {("expect_column_values_to_be_in_set", "sample_rate_hz")}),
        ("bad format", {("expect_column_values_to_be_in_set", "audio_format")}),
    ],
)
def test_tampered_table_fails_with_the_right_expectation(good, how, expected):
    result = check_contract(_tamper(good, how), None, max_duration_s=60)
    assert not result.success
    assert _failed(result) == expected


def test_missing_column_names_the_column(good):
    result = check_contract(_tamper(good, "missing column"), None)
    assert not result.success
    schema = [r for r in result.failed if r.expectation == "expect_table_columns_to_match_set"]
    assert len(schema) == 1
    assert schema[0].details["mismatched"]["missing"] == ["sha256"]
    # the column's own expectations fail too (they cannot run), but never crash the check
    assert {r.column for r in result.failed} == {None, "sha256"}


def test_wrong_type_is_named(good):
    result = check_contract(_tamper(good, "numeric text column"), None)
    assert ("expect_column_type_to_be", "generator") in _failed(result)


def test_unexpected_examples_are_reported(good):
    result = check_contract(_tamper(good, "bad status"), None)
    (outcome,) = result.failed
    assert outcome.unexpected_count == 1
    assert outcome.partial_unexpected == ["done"]


def test_metric_ranges_cover_present_columns_that_validators_bound():
    ranges = metric_ranges(["wer", "snr_db", "mos_ovrl", "duration_s", "not_a_metric"])
    assert ranges == {"wer": (0.0, None), "snr_db": (-20.0, 100.0)}
