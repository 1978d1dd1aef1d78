"""End to end: a small dataset spec on a LocalCluster into a folder and into the S3 API; every
export loaded with its real library; augmentation reproducible; bad specs fail before any work."""

from __future__ import annotations

import glob
import io
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audio_synth_core import audio
from audio_synth_core.dataset.augment import apply_augmentation
from audio_synth_core.errors import AudioSynthError
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from flows.api import synthesize_dataset

pytestmark = pytest.mark.slow

SPEC = {
    "name": "kws-test",
    "seed": 1,
    "texts": [
        {"name": "cmds", "kind": "lines", "lines": ["yes", "no", "stop", "go"], "weight": 4},
        {"name": "other", "kind": "template", "template": "turn {x} {y}",
         "slots": {"x": ["the light", "the fan"], "y": ["on", "off"]}, "label": "unknown"},
        {"name": "silence", "kind": "silence", "weight": 1},
    ],
    "speakers": {"voices": ["en-us", "en-gb"], "variants": ["m1", "f1"], "count": 4,
                 "params": {"pitch": {"min": 35, "max": 65}, "rate_wpm": {"min": 150, "max": 190}}},
    "size": {"utterances": 36},
    "augmentation": {"copies": 1, "noise": {"snr_db": [10, 20], "types": ["white", "pink"]},
                     "gain": {"p": 0.5, "db": [-3, 3]}},
    "quality_filter": {"max_wer": None, "min_snr_db": 5, "min_speaker_similarity": 0.3},
    "splits": {"ratios": {"train": 0.5, "dev": 0.25, "test": 0.25}, "disjoint_by": ["speaker"]},
    "sharding": {"items_per_shard": 8},
    "compute": {"n_workers": 1, "retries": 1, "retry_delay_s": 0.5},
    "tracking": {"experiment": "tests-dataset", "sample_audio": 1},
}  # fmt: skip


@pytest.fixture(scope="module")
def folder_run(prefect_api, tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset") / "out"
    manifest = synthesize_dataset(SPEC, str(out), workers=1)
    return out, manifest


def _items(store: Store, manifest: dict) -> pd.DataFrame:
    return store.read_tables(layout.dataset_dir(manifest["run_id"])).to_pandas()


def test_folder_run_is_balanced_split_and_leak_free(folder_run):
    out, manifest = folder_run
    assert manifest["kind"] == "dataset"
    assert manifest["leak_check"]["totals"]["speaker"] == 0
    m = manifest["metrics"]
    assert m["items_total"] == 36 and m["items_failed"] == 0
    assert m["items_kept"] + sum(manifest["drop_reasons"].values()) >= m["items_total"]
    items = _items(Store(str(out)), manifest)
    assert set(items["split"]) == {"train", "dev", "test"}
    # Every clean speech clip carries the watermark; the lookup maps payloads back to items.
    speech = items[items["kind"] == "speech"]
    assert manifest["watermark"]["items_marked"] == speech["clean_id"].nunique()
    assert manifest["provenance"]["signature"]
    assert items.groupby("speaker_id")["split"].nunique().max() == 1
    assert set(items["label"]) == {"yes", "no", "stop", "go", "unknown", "silence"}
    # The plan report was written before generation, and the run report and card exist.
    run = out / "runs" / manifest["run_id"]
    plan = json.loads((run / "reports" / "plan.json").read_text())
    assert {g["attribute"] for g in plan["groups"]} >= {"speaker", "gender", "source", "split"}
    assert "Rejection rate per group" in (run / "reports" / "dataset.html").read_text()
    card = (out / manifest["card"]).read_text()
    for word in ("load_dataset", "CutSet", "WebDataset", "NeMo", "Sizes per split", "CC0-1.0"):
        assert word in card


def test_augmentation_is_recorded_and_reproducible(folder_run):
    out, manifest = folder_run
    store = Store(str(out))
    items = _items(store, manifest)
    augmented = items[items["augmented"]]
    assert len(augmented) == len(items) / 2  # keep_clean + one copy per planned row
    for row in augmented.head(4).itertuples():
        params = json.loads(row.augmentation)
        assert params["effects"] and params["effects"][0]["effect"] in ("noise", "gain")
        assert row.audio_path.startswith("dataset_audio/")
        clean, rate = audio.decode(store.read_bytes(row.clean_audio_path))
        again = audio.encode(apply_augmentation(clean.astype(np.float32), rate, params), rate)
        assert again == store.read_bytes(row.audio_path)


def test_every_export_loads_with_its_library(folder_run):
    import lhotse
    import webdataset as wds

    import datasets

    out, manifest = folder_run
    exports = manifest["exports"]
    counts = exports["hf"]["counts"]
    hf = out / exports["hf"]["path"] / "data"
    ds = datasets.load_dataset(
        "parquet", data_files={s: str(hf / f"{s}-*.parquet") for s in counts}
    )
    assert {s: len(ds[s]) for s in counts} == counts
    first = ds["train"][0]
    decoded = first["audio"]
    samples = decoded["array"] if isinstance(decoded, dict) else decoded.get_all_samples().data
    assert np.asarray(samples).size > 1000

    cuts = lhotse.CutSet.from_file(out / exports["lhotse"]["path"] / "kws-test_cuts_dev.jsonl.gz")
    assert len(cuts) == counts["dev"]
    assert cuts[0].load_audio().shape[-1] > 1000

    tars = sorted(glob.glob(str(out / exports["webdataset"]["path"] / "test" / "*.tar")))
    samples = list(wds.WebDataset(tars, shardshuffle=False))
    assert len(samples) == counts["test"]
    wav, rate = sf.read(io.BytesIO(samples[0]["flac"]))
    assert rate == 22050 and wav.size > 1000 and json.loads(samples[0]["json"])

    lines = (out / exports["nemo"]["path"] / "train_manifest.json").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == counts["train"]
    assert {"audio_filepath", "text", "duration"} <= set(entries[0])
    info = sf.info(entries[0]["audio_filepath"])
    assert abs(info.duration - entries[0]["duration"]) < 0.01


def test_mlflow_run_holds_spec_stats_card_and_samples(folder_run):
    import mlflow

    out, manifest = folder_run
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.data.params["name"] == "kws-test"
    assert "rejection_rate" in run.data.metrics
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"spec.json", "group_stats.csv", "rejection_rates.csv", "dataset", "samples"} <= names
    samples = {
        a.path.split("/")[1].split("-")[0]
        for a in client.list_artifacts(run.info.run_id, "samples")
    }
    assert samples == {"train", "dev", "test"}
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        f"{manifest['run_id']}-{s}" for s in ("train", "dev", "test")
    }


def test_rerun_does_no_work(folder_run):
    out, manifest = folder_run
    again = synthesize_dataset(SPEC, str(out), workers=1)
    assert again["completed_at"] == manifest["completed_at"]


def test_s3_run_gives_the_same_bytes(folder_run, s3_bucket):
    out, manifest = folder_run
    url = f"s3://{s3_bucket}/datasets/kws"
    s3 = synthesize_dataset(SPEC, url, workers=1)
    assert s3["run_id"] == manifest["run_id"]
    local = _items(Store(str(out)), manifest).set_index("id")["sha256"]
    remote = _items(Store(url), s3).set_index("id")["sha256"]
    assert remote.sort_index().equals(local.sort_index())  # same seed, same bytes
    nemo = Store(url).read_bytes(f"{s3['exports']['nemo']['path']}/dev_manifest.json")
    first = json.loads(nemo.decode().splitlines()[0])
    assert first["audio_filepath"].startswith(f"s3://{s3_bucket}/")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"splits": {"ratios": {"train": 0.5, "dev": 0.5, "test": 0.5}}}, "must sum to 1"),
        ({"speakers": {**SPEC["speakers"], "voices": ["xx-none"]}}, "unknown voice 'xx-none'"),
        ({"texts": [{"name": "e", "kind": "lines", "lines": ["  "]}]}, "every line is empty"),
        (
            {
                "balance": {
                    "constraints": [{"attribute": "accent", "value": "en-029", "min_share": 0.2}]
                }
            },
            "impossible balance constraint",
        ),
        (
            {"texts": [{"name": "c", "kind": "lines", "path": "/nonexistent/corpus.txt"}]},
            "does not exist",
        ),
    ],
)
def test_bad_specs_fail_before_any_work(tmp_path, change, message):
    out = tmp_path / "never"
    with pytest.raises(AudioSynthError) as err:
        synthesize_dataset({**SPEC, **change}, str(out))
    assert message in str(err.value)
    assert not out.exists()


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["dataset", str(spec), "--output", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run kws-test-" in result.output and "gender" in result.output
    assert not out.exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SPEC, "splits": {"ratios": {"train": 2.0}}}))
    result = CliRunner().invoke(app, ["dataset", str(bad), "--output", str(out)])
    assert result.exit_code == 2 and "must sum to 1" in result.output


def test_gc_keeps_every_clip_a_dataset_run_uses(folder_run):
    from flows.api import collect_garbage

    out, _ = folder_run
    freed = collect_garbage(str(out), dry_run=True)
    assert freed["audio_files"] == 0
