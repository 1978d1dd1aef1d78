"""Portable outputs: an output moved to another folder, or downloaded from S3, still finds its own
audio, with this project's reader and with plain pandas, DuckDB and HF ``datasets`` plus the
documented one-line join ``<root>/<audio_path>``."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from audio_synth_core.config.models import parse_config
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import planning, runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from flows.api import list_runs, read_items, run_catalog
from tests.conftest import small_config, write_catalog

pytestmark = pytest.mark.slow

ROWS = [
    {"id": "r1", "text": "The kettle boils water in two minutes.", "language": "en"},
    {"id": "r2", "text": "Please keep the receipt for your warranty.", "language": "en"},
    {"id": "r3", "text": "The shop opens at nine every morning.", "language": "en"},
]


def _config(catalog: Path, output: str) -> dict:
    return small_config(
        catalog,
        output,
        compute={"n_workers": 1},
        validation={"validators": [{"name": "quality"}]},
    )


@pytest.fixture(scope="module")
def moved(prefect_api, tmp_path_factory):
    """One catalog run into ``a``, then ``a`` moved to ``b``: (tmp root, config, manifest)."""
    root = tmp_path_factory.mktemp("portable")
    cfg = _config(write_catalog(root / "catalog.csv", ROWS), str(root / "a"))
    manifest = run_catalog(cfg)
    shutil.move(root / "a", root / "b")
    return root, cfg, manifest


def _check_audio(path: str, sha256: str) -> None:
    """The file at ``path`` is the one the metadata names, and it decodes to speech-length audio."""
    with open(path, "rb") as fh:
        data = fh.read()
    assert hashlib.sha256(data).hexdigest() == sha256
    audio, rate = sf.read(io.BytesIO(data))
    assert rate == 22050 and 0.5 < len(audio) / rate < 10


def _items_dir(root: Path) -> Path:
    run_id = json.loads((root / "LATEST.json").read_text())["run_id"]
    return root / "runs" / run_id / "items"


def test_read_items_finds_every_file_of_a_moved_output(moved):
    root, _, manifest = moved
    assert not (root / "a").exists()
    items = read_items(str(root / "b"))
    assert len(items) == 3 and (items["status"] == "ok").all()
    assert items["run_id"].eq(manifest["run_id"]).all()
    for row in items.itertuples():
        assert row.audio_uri == f"{root / 'b'}/{row.audio_path}"
        _check_audio(row.audio_uri, row.sha256)


def test_plain_pandas_with_the_one_line_join(moved):
    root = moved[0] / "b"
    df = pd.read_parquet(_items_dir(root))
    df["audio"] = str(root) + "/" + df["audio_path"]  # the join documented in the README
    assert len(df) == 3
    for row in df.itertuples():
        _check_audio(row.audio, row.sha256)


def test_duckdb_with_the_one_line_join(moved):
    import duckdb

    root = moved[0] / "b"
    rows = duckdb.sql(
        f"SELECT '{root}/' || audio_path AS audio, sha256 "
        f"FROM read_parquet('{_items_dir(root)}/*.parquet') WHERE status = 'ok'"
    ).fetchall()
    assert len(rows) == 3
    for audio, sha256 in rows:
        _check_audio(audio, sha256)


def test_hf_datasets_with_the_one_line_join(moved, tmp_path, monkeypatch):
    # Offline, and its caches in tmp_path rather than the home directory.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    # Without HF datasets installed, the repo's own datasets/ folder imports in its place.
    assert hasattr(datasets, "load_dataset"), "HF datasets is missing: pip install -e '.[dev]'"
    root = moved[0] / "b"
    ds = datasets.load_dataset(
        "parquet",
        data_files=str(_items_dir(root) / "*.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    # Bytes through the joined path: datasets' Audio feature would need torchcodec.
    ds = ds.map(lambda r: {"audio": f"{root}/{r['audio_path']}"})
    assert ds.num_rows == 3
    for row in ds:
        _check_audio(row["audio"], row["sha256"])


def test_validate_cli_on_a_moved_output(moved):
    from typer.testing import CliRunner

    from flows.cli import app

    root = moved[0]
    out = root / "c"
    result = CliRunner().invoke(app, ["validate", str(root / "b"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    items = read_items(str(out))
    assert len(items) == 3 and items["passed"].all()
    assert items["failed_checks"].isna().all() and (items["duration_s"] > 0.5).all()
    # Imported audio lives outside the validate output: an absolute URL into b, no relative path.
    assert items["audio_path"].isna().all()
    assert items["audio_uri"].str.startswith(f"{root / 'b'}/audio/").all()


def test_rerun_against_the_moved_output_does_no_work(moved):
    root, cfg, manifest = moved
    audio = sorted((root / "b" / "audio").rglob("*.flac"))
    before = {p: p.stat().st_mtime_ns for p in audio}
    again = run_catalog(cfg, output=str(root / "b"))
    assert again["run_id"] == manifest["run_id"]
    assert list_runs(str(root / "b")) == [manifest["run_id"]]
    assert {p: p.stat().st_mtime_ns for p in audio} == before and len(before) == 3


def test_an_s3_output_downloaded_to_a_folder_reads_back(s3_server, s3_bucket, tmp_path):
    import s3fs

    url = f"s3://{s3_bucket}/out"
    cfg = parse_config(_config(write_catalog(tmp_path / "catalog.csv", ROWS), url))
    store = Store(url)
    plan = planning.build_plan(cfg, build_generator("espeak", {}), store)
    shards = runs.prepare(
        store,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )
    for spec in shards:
        generate_shard(spec, store, build_generator("espeak", {}))
    runs.commit(store, "catalog", plan.run_id, {}, {})
    local = tmp_path / "download"
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}).get(
        f"{s3_bucket}/out/", str(local), recursive=True
    )
    items = read_items(str(local))
    assert len(items) == 3 and (items["status"] == "ok").all()
    assert items["audio_uri"].str.startswith(f"{local}/audio/").all()
    for row in items.itertuples():
        _check_audio(row.audio_uri, row.sha256)
    df = pd.read_parquet(_items_dir(local))
    for path, sha256 in zip(str(local) + "/" + df["audio_path"], df["sha256"], strict=True):
        _check_audio(path, sha256)
