"""A new validator is one class plus one registration: no edit anywhere else.

``LoudnessRangeValidator`` below is registered in-process (no entry point) and measured on real
audio through the pipeline's own ``validate_row``. Its declarations alone put it in the data
contract (range expectation), the run report (its section, its metric, the samples it ranks) and
``registered_fields`` (its direction, which the comparison reads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pydantic
import pytest

from audio_synth_core.assessment.assess import assess, sample_ranking, write_reports
from audio_synth_core.assessment.contract import check_contract
from audio_synth_core.audio import encode, frame_rms
from audio_synth_core.config.models import ValidationConfig
from audio_synth_core.pipeline import runs
from audio_synth_core.pipeline.validate import validate_row, validation_schema
from audio_synth_core.plugins import registry as plugins
from audio_synth_core.plugins.params import StrictParams, parse_params
from audio_synth_core.reporting.html import histogram_img, html_table
from audio_synth_core.store import layout
from audio_synth_core.store.schema import ITEM_SCHEMA
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import (
    CheckResult,
    Clip,
    MetricField,
    Validator,
    build_validator,
    registered_fields,
)
from audio_synth_core.validators.rules import limit_check
from tests.core.assessment.test_contract import make_metadata
from tests.factories import SENTENCES, speech, tone

RATE_HZ = 22050
RUN_ID = "run-lra"
METRIC = "loudness_range_db"
BETWEEN = "expect_column_values_to_be_between"


class LoudnessRangeParams(StrictParams):
    max_loudness_range_db: float = pydantic.Field(20.0, gt=0)


class LoudnessRangeValidator(Validator):
    """Spread of a clip's 100 ms frame levels (p95 - p10 of frames above -70 dBFS)."""

    name: ClassVar[str] = "loudness_range"
    fields: ClassVar[tuple[MetricField, ...]] = (
        MetricField(
            METRIC,
            pa.float64(),
            "dB",
            "p95 - p10 of 100 ms frame levels above -70 dBFS",
            direction="lower",
            valid_range=(0.0, 120.0),
            sample_priority=25,  # after mos_ovrl (10) and wer (20), before snr_db (30)
        ),
    )

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(LoudnessRangeParams, self.name, params, "validator")
        super().__init__(**self.config.model_dump())

    def measure(self, clip: Clip) -> dict[str, Any]:
        frames = frame_rms(np.asarray(clip.audio), clip.sample_rate_hz, 0.1)
        level_db = 20 * np.log10(np.maximum(frames, 1e-10))
        voiced = level_db[level_db > -70]
        if voiced.size < 2:
            return {METRIC: None}
        p10, p95 = np.percentile(voiced, [10, 95])
        return {METRIC: float(p95 - p10)}

    def check(self, metrics: Mapping[str, Any]) -> list[CheckResult]:
        limit = self.config.max_loudness_range_db
        failed = limit_check("max_loudness_range_db", METRIC, metrics.get(METRIC), limit, "dB")
        return [failed] if failed is not None else []

    def report_section(self, df: pd.DataFrame) -> tuple[str, str] | None:
        if METRIC not in df.columns:
            return None
        x = pd.to_numeric(df[METRIC], errors="coerce").dropna().to_numpy(np.float64)
        limit = self.config.max_loudness_range_db
        img = histogram_img(x, "loudness range (dB)", limit=limit)
        row = [x.size, float(np.median(x)), int((x > limit).sum())]
        return "Loudness range", img + html_table(["items", "median dB", "over limit"], [row])


@pytest.fixture
def loudness_range():
    with plugins.register(plugins.VALIDATORS, "loudness_range", LoudnessRangeValidator):
        yield


def _clips() -> dict[str, np.ndarray]:
    """Real audio: three espeak sentences, a steady tone, and a tone that drops by 30 dB."""
    clips = {}
    for i, text in enumerate(SENTENCES[:3]):
        audio, rate = speech(text)
        assert rate == RATE_HZ
        clips[f"speech-{i}"] = audio
    clips["steady-tone"] = tone(330, 1.5, RATE_HZ, dbfs=-18)
    clips["stepped-tone"] = np.concatenate(
        [tone(330, 0.75, RATE_HZ, dbfs=-12), tone(330, 0.75, RATE_HZ, dbfs=-42)]
    )
    return clips


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "out"))


@pytest.fixture
def run(loudness_range, store: Store) -> pd.DataFrame:
    """A run of the clips above validated by the new validator alone, read back as the flows do."""
    validator = build_validator("loudness_range", {"max_loudness_range_db": 20.0})
    clips = _clips()
    items = make_metadata(len(clips), seed=7, fail_share=0.0)
    items["catalog_id"] = list(clips)
    items["audio_uri"] = [store.uri(layout.audio(i, "flac")) for i in items["id"]]
    validated = []
    for item_id, audio in zip(items["id"], clips.values(), strict=True):
        store.write_bytes(layout.audio(item_id, "flac"), data := encode(audio, RATE_HZ))
        validated.append(validate_row({"id": item_id}, data, [validator]))
    item_table = pa.Table.from_pandas(items[ITEM_SCHEMA.names], ITEM_SCHEMA, preserve_index=False)
    store.write_table(f"{layout.items_dir(RUN_ID)}/part-0.parquet", item_table)
    metrics = pa.Table.from_pylist(validated, schema=validation_schema([validator]))
    store.write_table(f"{layout.validation_dir(RUN_ID)}/part-0.parquet", metrics)
    return runs.read_items(store, RUN_ID)


def test_metrics_come_from_real_audio(run: pd.DataFrame):
    by_clip = run.set_index("catalog_id")
    assert by_clip.loc["steady-tone", METRIC] < 1.0
    assert by_clip.loc["stepped-tone", METRIC] == pytest.approx(30.0, abs=1.0)
    assert by_clip.loc["stepped-tone", "failed_checks"] == "max_loudness_range_db"
    assert by_clip.loc["steady-tone", "passed"]


def test_registered_fields_carry_its_direction(loudness_range):
    declared = registered_fields()[METRIC]
    assert (declared.direction, declared.valid_range) == ("lower", (0.0, 120.0))


def test_unregistered_it_is_gone():
    assert METRIC not in registered_fields()


def test_it_enters_the_contract_the_samples_and_the_report(
    run: pd.DataFrame, store: Store, tmp_path: Path
):
    cfg = ValidationConfig(
        validators=[{"name": "loudness_range", "params": {"max_loudness_range_db": 20.0}}],
        n_boot=50,
        report_samples=2,
        gate={"min_pass_rate": 0.0},
    )
    docs = tmp_path / "docs"
    assessment = assess(run, cfg, str(docs), RUN_ID)

    # (a) the contract evaluated the range the field declares
    assert assessment.contract.success, assessment.contract.failed
    (outcome,) = [r for r in assessment.contract.results if r.column == METRIC]
    assert (outcome.expectation, outcome.success) == (BETWEEN, True)
    tampered = run.copy()
    tampered.loc[0, METRIC] = -1.0
    failed = check_contract(tampered, None).failed
    assert [(r.expectation, r.column) for r in failed] == [(BETWEEN, METRIC)]

    # the report samples are ranked by it: worst first, high is bad (direction "lower")
    assert sample_ranking(run) == (METRIC, False)

    # (b) the report holds its section, its metric and the samples it picked
    write_reports(store, RUN_ID, run, assessment, cfg, str(docs))
    page = store.read_bytes(f"{layout.reports_dir(RUN_ID)}/report.html").decode()
    report = json.loads(store.read_bytes(f"{layout.reports_dir(RUN_ID)}/report.json"))
    assert "<h2>Loudness range</h2>" in page and "over limit" in page
    assert page.index(">Fairness<") < page.index(">Loudness range<") < page.index(">Data contract<")
    assert f"<td>{METRIC}</td>" in page  # the metric distribution table
    assert report["metrics"][METRIC]["count"] == len(run)
    worst, best = report["samples"]
    by_id = run.set_index("id")["catalog_id"]
    assert (worst["label"], by_id[worst["id"]]) == ("worst", "stepped-tone")
    assert (best["label"], by_id[best["id"]]) == ("best", "steady-tone")
    assert METRIC in worst["metrics"] and worst["embedded"]
