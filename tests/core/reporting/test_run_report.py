"""Run report: verdict, tables, embedded charts and audio, JSON, and atomic writes."""

from __future__ import annotations

import base64
import io
import json
import re

import fsspec
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audio_synth_core.assessment.contract import check_contract
from audio_synth_core.assessment.fairness import fairness_report, flatten_attributes
from audio_synth_core.reporting.run_report import MAX_PLAYERS, build_report, write_report
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.privacy import PrivacyValidator
from tests.core.assessment.test_contract import make_metadata
from tests.factories import tone

ATTRS = ["gender", "age_band", "accent", "language"]
METRICS = ["snr_db", "wer", "cer", "mos_ovrl", "max_similarity"]


def flac_bytes(freq_hz: float, seconds: float = 1.0, rate: int = 22050) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(freq_hz, seconds, rate), rate, format="FLAC")
    return buf.getvalue()


def samples_for(df: pd.DataFrame, k: int = 8, seconds: float = 1.0) -> list[dict]:
    ok = df[df["status"] == "ok"].sort_values("snr_db")
    picks = [("worst", r) for _, r in ok.head(k // 2).iterrows()]
    picks += [("best", r) for _, r in ok.tail(k - k // 2).iterrows()]
    return [
        {
            "id": r["id"],
            "label": f"{kind} snr",
            "audio_bytes": flac_bytes(220 + 30 * i, seconds),
            "mime": "audio/flac",
            "metrics": {"snr_db": r["snr_db"], "wer": r["wer"]},
        }
        for i, (kind, r) in enumerate(picks)
    ]


def degrade(df: pd.DataFrame, gender: str, snr_db: float = 8.0) -> pd.DataFrame:
    """Lower one gender's SNR and fail its items below 20 dB, as the quality validator would."""
    df = df.copy()
    hit = (df["gender"] == gender) & (df["status"] == "ok")
    df.loc[hit, "snr_db"] -= snr_db
    low = hit & (df["snr_db"] < 20)
    df.loc[low, "passed"] = False
    df.loc[low, "failed_checks"] = df.loc[low, "failed_checks"].map(
        lambda s: ",".join(dict.fromkeys(c for c in [*str(s).split(","), "snr"] if c))
    )
    return df


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """A biased run with a contract violation, its fairness and contract results."""
    out = tmp_path_factory.mktemp("run")
    df = degrade(flatten_attributes(make_metadata(400, seed=1)), "female")
    df.loc[df.index[df["status"] == "ok"][0], "duration_s"] = 9999.0
    df.loc[df.index[df["status"] == "failed"][0], "error"] = "<script>alert(1)</script>"
    fairness = fairness_report(df, ATTRS, METRICS, n_boot=200)
    contract = check_contract(df, str(out / "data_docs"), max_duration_s=60)
    return out, df, fairness, contract


def similarity_section(df: pd.DataFrame, limit: float = 0.75) -> tuple[str, str]:
    """The privacy validator's own report section (building it reads no references)."""
    section = PrivacyValidator(reference_url="unused", max_similarity=limit).report_section(df)
    assert section is not None
    return section


def _img_sources(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_failing_run_report_has_verdict_tables_charts_and_players(failing_run):
    _, df, fairness, contract = failing_run
    samples = samples_for(df)
    summary = {"run_id": "run-0042", "items_per_s": 171.5}

    js, page = build_report(
        summary, df, fairness, contract, samples, sections=[similarity_section(df)]
    )

    assert "GATE FAILED" in page and "run-0042" in page
    assert "four-fifths rule: gender pass rate of female" in page
    assert "data contract failed: expect_column_values_to_be_between(duration_s)" in page
    for heading in ("Counts", "Failed checks by check", "Metric distributions", "Fairness"):
        assert f">{heading}<" in page
    assert "Pass-rate parity (four-fifths rule)" in page and "Coverage balance" in page
    assert "<b>FLAGGED</b>" in page
    assert ">Speaker similarity<" in page and "above the limit 0.75" in page
    assert page.index(">Fairness<") < page.index(">Speaker similarity<") < page.index(">Data")
    assert 'href="data_docs/index.html"' in page
    assert "Flagged items" in page and "GenerationError" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert page.count("<audio controls") == len(samples) == 8
    assert page.count('src="data:audio/flac;base64,') == 8

    pngs = _img_sources(page)
    # histograms, one chart per analysed attribute (language has one group), similarity section
    assert len(pngs) == 1 + 3 + 1
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    audio = re.search(r'src="data:audio/flac;base64,([^"]+)"', page).group(1)
    decoded, rate = sf.read(io.BytesIO(base64.b64decode(audio)))
    assert rate == 22050 and len(decoded) == 22050

    # self-contained: no external resources of any kind
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "<script" not in page
    assert len(page) < 3_000_000

    assert js["verdict"]["passed"] is False
    assert js["counts"]["items"] == 400
    assert js["counts"]["status"]["ok"] == int((df["status"] == "ok").sum())
    assert js["counts"]["failed_checks"]["snr"] == int(
        df["failed_checks"].str.contains("snr").sum()
    )
    assert js["flagged_total"] == int(((df["status"] != "ok") | ~df["passed"]).sum())
    assert set(js["metrics"]) >= {"snr_db", "wer", "duration_s", "max_similarity"}
    assert "sample_rate_hz" not in js["metrics"]
    assert js["fairness"]["attributes"]["gender"]["pass_rate"]["flagged"] is True
    assert js["contract"]["success"] is False
    assert [s["embedded"] for s in js["samples"]] == [True] * 8
    assert "audio_bytes" not in js["samples"][0]
    json.dumps(js, allow_nan=False)


def test_good_run_passes_the_gate(tmp_path):
    df = flatten_attributes(make_metadata(300, seed=2))
    fairness = fairness_report(df, ATTRS, METRICS, n_boot=100)
    contract = check_contract(df, None, max_duration_s=60)
    js, page = build_report({"run_id": "ok-run"}, df, fairness.to_dict(), contract.to_dict(), [])

    assert contract.success and fairness.flags == []
    assert js["verdict"] == {"passed": True, "reasons": ["all gates passed"], "warnings": []}
    assert "GATE PASSED" in page
    assert "No sample audio" in page
    assert "Open the Great Expectations Data Docs" not in page  # no docs were written


def test_summary_gate_decides_and_missing_parts_are_tolerated():
    df = flatten_attributes(make_metadata(60, seed=3)).drop(columns=["max_similarity"])
    js, page = build_report(
        {"gate_passed": False, "gate_reasons": ["wer p95 0.31 > 0.25"]}, df, None, None, None
    )
    assert js["verdict"]["passed"] is False
    assert js["verdict"]["reasons"] == ["wer p95 0.31 > 0.25"]
    assert "wer p95 0.31 &gt; 0.25" in page
    assert "No fairness report" in page and "No contract result" in page
    assert "Speaker similarity" not in page


def test_players_are_capped(failing_run):
    _, df, fairness, contract = failing_run
    many = samples_for(df, k=12)
    js, page = build_report({}, df, fairness, contract, many)
    assert page.count("<audio controls") == MAX_PLAYERS
    assert "4 more samples not shown" in page

    huge = [{**many[0], "audio_bytes": b"\0" * 5_000_000}, many[1]]
    js, page = build_report({}, df, fairness, contract, huge)
    assert page.count("<audio controls") == 1
    assert [s["embedded"] for s in js["samples"]] == [False, True]
    assert "Not embedded (size budget)" in page


def test_write_report_local_is_atomic_and_overwrites(tmp_path, failing_run):
    _, df, fairness, contract = failing_run
    js, page = build_report({"run_id": "r"}, df, fairness, contract, samples_for(df, 2))
    folder = tmp_path / "reports"

    written = write_report(js, page, Store(str(folder)), "")
    write_report({**js, "summary": {"run_id": "r2"}}, page, Store(str(folder)), "")

    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json"]
    assert written == {"json": f"{folder}/report.json", "html": f"{folder}/report.html"}
    assert json.loads((folder / "report.json").read_text())["summary"] == {"run_id": "r2"}
    assert (folder / "report.html").read_text(encoding="utf-8") == page


def test_write_report_remote_uses_single_puts():
    fs = fsspec.filesystem("memory")
    js, page = build_report({"run_id": "m"}, pd.DataFrame({"status": ["ok"]}), None, None, None)
    written = write_report(js, page, Store("memory://bucket/run-1"), "reports")
    assert written["html"] == "memory://bucket/run-1/reports/report.html"
    assert json.loads(fs.cat_file("/bucket/run-1/reports/report.json"))["summary"]["run_id"] == "m"
    assert fs.cat_file("/bucket/run-1/reports/report.html").decode() == page
    fs.rm("/bucket", recursive=True)


def test_metric_stats_ignore_missing_values():
    df = pd.DataFrame(
        {"status": ["ok", "ok", "failed"], "snr_db": [10.0, 30.0, np.nan], "passed": [1, 0, 0]}
    )
    js, _ = build_report({}, df, None, None, None)
    assert js["metrics"]["snr_db"]["count"] == 2
    assert js["metrics"]["snr_db"]["mean"] == 20.0
    assert js["counts"]["passed"] == 1


def test_similarity_section_uses_the_validators_limit():
    df = flatten_attributes(make_metadata(60, seed=4))
    over = int((df["max_similarity"] > 0.6).sum())
    title, body = similarity_section(df, limit=0.6)
    assert title == "Speaker similarity"
    assert f"{over} of {int(df['max_similarity'].notna().sum())} items above the limit 0.6" in body
    assert len(_img_sources(body)) == 1

    validator = PrivacyValidator(reference_url="unused")
    assert validator.report_section(df.drop(columns=["max_similarity"])) is None
    empty = df.assign(max_similarity=np.nan)
    assert validator.report_section(empty) == (
        "Speaker similarity",
        '<p class="muted">No similarity values.</p>',
    )
