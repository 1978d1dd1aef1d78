"""End to end: the catalog flow on a LocalCluster into a folder and into S3, with real audio."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from flows.api import read_items, run_catalog
from tests.conftest import REPO, show, small_config

pytestmark = pytest.mark.slow

LONG = " ".join(
    f"Chapter sentence number {i} tells a little more of the story of the lighthouse keeper."
    for i in range(25)
)

CATALOG = (
    "id,text,language,voice,category\n"
    "p1,This sturdy kettle boils water in two minutes.,en,,product\n"
    "p2,Please keep the receipt for your warranty.,en,en-us+f3,product\n"
    "p3,Diese Lampe ist leise und sparsam.,de,,product\n"
    "p4,Cette veste résiste à la pluie.,fr,,product\n"
    f'book,"{LONG}",en,,book\n'
    "empty,   ,en,,product\n"
    "badvoice,Hello there.,en,xx-nonexistent,product\n"
    "badlang,Hello there.,zz,,product\n"
    "p1,A duplicate id must not overwrite the first row.,en,,product\n"
    "broken,this row,has,too,many,fields\n"
    "p5,The shop opens at nine every morning.,en,,product\n"
)


def make_catalog(tmp_path: Path, text: str = CATALOG) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text(text, encoding="utf-8")
    return path


def decode_uri(uri: str) -> tuple[np.ndarray, int]:
    store = Store(uri.rsplit("/", 1)[0])
    data = store.read_bytes(uri.rsplit("/", 1)[1])
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return audio, rate


def check_outputs(items: pd.DataFrame) -> None:
    ok = items[items["status"] == "ok"]
    failed = items[items["status"] == "failed"].set_index("catalog_id")
    # Good items are all produced: 5 short rows + the long text split into several chunks.
    assert set(ok["catalog_id"]) == {"p1", "p2", "p3", "p4", "p5", "book"}
    assert (ok["catalog_id"] == "book").sum() >= 4
    assert ok[ok["catalog_id"] == "p1"]["text"].str.contains("kettle").all()
    # Every bad row is a failed item whose error names the problem.
    assert "empty text" in failed.loc["empty", "error"]
    assert "xx-nonexistent" in failed.loc["badvoice", "error"]
    assert "zz" in failed.loc["badlang", "error"]
    assert "duplicate id 'p1'" in failed.loc["p1#row-10", "error"]
    assert "expected 5 fields" in failed.filter(like="row-11", axis=0)["error"].iloc[0]
    for row in ok.itertuples():
        audio, rate = decode_uri(row.audio_uri)
        assert rate == row.sample_rate_hz == 22050
        assert len(audio) == row.num_samples
        assert 0.5 < len(audio) / rate < 40
        assert np.sqrt(np.mean(audio**2)) > 0.01  # speech, not silence
        assert row.silence_ratio < 0.6
        assert -40 < row.integrated_lufs < -5


def test_local_run_end_to_end(prefect_api, tmp_path):
    out = tmp_path / "out"
    manifest = run_catalog(small_config(make_catalog(tmp_path), str(out)))
    assert manifest["metrics"]["items_failed"] == 5
    items = read_items(str(out))
    check_outputs(items)
    assert items["id"].is_unique
    assert manifest["changes"] == {"new": len(items), "unchanged": 0, "gone": 0}
    # The MLflow run holds config params, metrics and sample audio.
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    run = mlflow.get_run(manifest["mlflow_run_id"])
    assert run.data.params["sharding.items_per_shard"] == "4"
    assert run.data.metrics["items_ok"] == len(items) - 5
    assert run.data.metrics["utterances_per_s"] > 0
    names = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "samples")]
    assert len(names) == 2 and all(n.endswith(".flac") for n in names)
    reports = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "reports")]
    assert sorted(reports) == ["reports/report.html", "reports/report.json"]
    # Validation ran as the shards were generated: clean speech passes, broken rows do not.
    assert manifest["gate"]["passed"] and run.data.metrics["pass_rate"] == pytest.approx(12 / 17)
    assert (items.loc[items["status"] == "ok", "passed"]).all()
    assert not items.loc[items["status"] == "failed", "passed"].any()
    assert items.loc[items["status"] == "ok", "snr_db"].min() > 30
    report = (out / "runs" / manifest["run_id"] / "reports" / "report.html").read_text()
    assert "<audio" in report and "data:image/png;base64," in report
    assert (out / "runs" / manifest["run_id"] / "reports" / "data_docs" / "index.html").exists()
    shown = show(str(out))
    assert f"catalog run {manifest['run_id']}" in shown and "gate: passed" in shown
    assert f"status: {{'ok': {len(items) - 5}, 'failed': 5}}" in shown

    # Same config into a second folder: same ids and the same audio bytes.
    out2 = tmp_path / "out2"
    run_catalog(small_config(make_catalog(tmp_path), str(out2)))
    again = read_items(str(out2))
    cols = ["id", "sha256", "num_samples"]
    pd.testing.assert_frame_equal(
        items[cols].sort_values("id").reset_index(drop=True),
        again[cols].sort_values("id").reset_index(drop=True),
    )

    # Re-running a finished run does no generation work.
    before = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.flac")}
    third = run_catalog(small_config(make_catalog(tmp_path), str(out)))
    assert third["run_id"] == manifest["run_id"]
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.flac")} == before


def test_changed_catalog_regenerates_only_changes(prefect_api, tmp_path):
    out = tmp_path / "out"
    rows = [f"c{i},Item number {i} is a quiet desk lamp.,en" for i in range(8)]
    first = run_catalog(
        small_config(make_catalog(tmp_path, "id,text,language\n" + "\n".join(rows)), str(out))
    )
    assert first["metrics"]["items_generated"] == 8
    rows[2] = "c2,Item number two now has a brand new description.,en"  # changed
    del rows[5]  # gone
    rows.append("c9,A new product joins the catalog today.,en")  # new
    second = run_catalog(
        small_config(make_catalog(tmp_path, "id,text,language\n" + "\n".join(rows)), str(out))
    )
    assert second["run_id"] != first["run_id"]
    assert second["changes"] == {"new": 2, "unchanged": 6, "gone": 2}  # c2 old version is gone too
    assert second["metrics"]["items_generated"] == 2
    changes = Store(str(out)).read_table(layout.changes(second["run_id"])).to_pandas()
    assert set(changes.loc[changes["change"] == "gone", "catalog_id"]) == {"c2", "c5"}
    assert set(changes.loc[changes["change"] == "new", "catalog_id"]) == {"c2", "c9"}
    items = read_items(str(out))
    assert len(items) == 8 and (items["status"] == "ok").all()


def test_s3_output(prefect_api, s3_bucket, tmp_path):
    url = f"s3://{s3_bucket}/catalogs/demo"
    manifest = run_catalog(small_config(make_catalog(tmp_path), url))
    items = read_items(url)
    check_outputs(items)
    assert (
        items.loc[items["status"] == "ok", "audio_uri"].str.startswith(f"s3://{s3_bucket}/").all()
    )
    assert Store(url).exists(layout.manifest(manifest["run_id"]))


def test_missing_bucket_is_a_clear_error(prefect_api, s3_server, tmp_path):
    from audio_synth_core.errors import StorageError

    with pytest.raises(StorageError, match="no-such-bucket"):
        run_catalog(small_config(make_catalog(tmp_path), "s3://no-such-bucket/x"))


def test_killed_run_is_completed_by_the_next(prefect_api, tmp_path):
    out = tmp_path / "out"
    rows = [
        f"k{i},Sentence {i}: the harbour lights came on one by one as the ferry left.,en"
        for i in range(120)
    ]
    catalog = make_catalog(tmp_path, "id,text,language\n" + "\n".join(rows))
    cfg = small_config(catalog, str(out), compute={"n_workers": 1}, sharding={"items_per_shard": 4})
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    script = "import json,sys; from flows.api import run_catalog; run_catalog(json.load(open(sys.argv[1])))"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(cfg_path)],
        cwd=REPO,
        start_new_session=True,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    parts = []
    while time.monotonic() < deadline and len(parts) < 3:
        parts = list(out.glob("runs/*/items/*.parquet"))
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= len(parts) < 30, "the run must be killed mid-way"
    done = len(list(out.glob("runs/*/items/*.parquet")))
    assert not list(out.glob("runs/*/manifest.json"))
    manifest = run_catalog(cfg)
    assert manifest["metrics"]["shards_run"] == 30 - done
    items = read_items(str(out))
    assert len(items) == 120 and items["id"].is_unique and (items["status"] == "ok").all()
    # A file killed mid-write stays under a temporary name; every file the metadata names decodes.
    for uri in items["audio_uri"]:
        audio, _ = decode_uri(uri)
        assert len(audio) > 0
