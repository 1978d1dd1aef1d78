"""Each export loads with its real library and an item decodes to the source FLAC's samples."""

from __future__ import annotations

import glob
import io
import json
import os

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from audio_synth_core.audio import decode, encode
from audio_synth_core.dataset.exports import EXPORT_FORMATS, export_all
from audio_synth_core.errors import ConfigError
from audio_synth_core.store import layout
from audio_synth_core.store.ids import content_id
from audio_synth_core.store.storage import Store
from tests.factories import SENTENCES, speech, tone

SPLITS = ("train", "train", "train", "dev", "test")  # 3 train items -> 2 shards of 2


def _items(store: Store) -> pa.Table:
    """Five real items (espeak speech and a tone) written to the store like a generation run."""
    rows = []
    for i, split in enumerate(SPLITS):
        if i < 2:
            audio, rate = speech(SENTENCES[i])
        else:
            audio, rate = tone(200.0 + 100 * i, 0.5, 16000), 16000
        item_id = content_id("export-test", i)
        rel = layout.audio(item_id, "flac")
        store.write_bytes(rel, encode(audio, rate))
        rows.append(
            {
                "id": item_id,
                "split": split,
                "text": SENTENCES[i],
                "speaker_id": f"spk{i % 2}",
                "language": "en",
                "gender": "female" if i % 2 else "male",
                "age_band": "adult",
                "accent": None,
                "duration_s": round(len(audio) / rate, 3),
                "sample_rate_hz": rate,
                "audio_path": rel,
                "audio_format": "flac",
                "clean_id": None if i != 2 else content_id("export-test", 0),
                "augmentation": None if i != 2 else json.dumps({"version": 1, "effects": []}),
                "source_id": "doc-1",
            }
        )
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    store = Store(str(root / "out"))
    items = _items(store)
    result = export_all(store, items, EXPORT_FORMATS, "exports/ds1", name="kws", shard_items=2)
    return store, items, result


def _source(store: Store, items: pa.Table, item_id: str) -> tuple[np.ndarray, int]:
    row = next(r for r in items.to_pylist() if r["id"] == item_id)
    return decode(store.read_bytes(row["audio_path"]))


def test_result_lists_every_file_and_count(exported):
    store, _, result = exported
    assert set(result) == set(EXPORT_FORMATS)
    for fmt, info in result.items():
        assert info["path"] == f"exports/ds1/{fmt}"
        assert info["counts"] == {"train": 3, "dev": 1, "test": 1}
        for rel in info["files"]:
            assert store.exists(rel), rel
    hf = result["hf"]["files"]
    assert "exports/ds1/hf/data/train-00000-of-00002.parquet" in hf
    assert "exports/ds1/hf/data/train-00001-of-00002.parquet" in hf
    assert "exports/ds1/hf/data/dev-00000-of-00001.parquet" in hf
    assert len([f for f in result["webdataset"]["files"] if "/train/" in f]) == 2
    assert not glob.glob(os.path.join(store.path(""), "**", "*.tmp-*"), recursive=True)


def test_hf_parquet_loads_with_datasets_and_decodes(exported, tmp_path):
    import datasets

    store, items, _result = exported
    base = store.path("exports/ds1/hf/data")
    files = {s: f"{base}/{s}-*.parquet" for s in ("train", "dev", "test")}
    ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf"))
    assert {k: len(v) for k, v in ds.items()} == {"train": 3, "dev": 1, "test": 1}
    assert isinstance(ds["train"].features["audio"], datasets.Audio)
    row = ds["dev"][0]
    decoded = row["audio"].get_all_samples()
    expected, rate = _source(store, items, row["id"])
    assert decoded.sample_rate == rate
    np.testing.assert_allclose(decoded.data.numpy()[0], expected, atol=1e-6)
    assert row["text"] == SENTENCES[3]
    assert row["augmentation"] is None and row["source_id"] == "doc-1"
    readme = store.read_bytes("exports/ds1/hf/README.md").decode()
    assert "path: data/train-*.parquet" in readme and "load_dataset" in readme
    # The README's YAML maps splits to shards: the folder itself loads (as from the Hub).
    folder = datasets.load_dataset(store.path("exports/ds1/hf"), cache_dir=str(tmp_path / "hf2"))
    assert {k: len(v) for k, v in folder.items()} == {"train": 3, "dev": 1, "test": 1}


def test_lhotse_cuts_load_and_decode(exported):
    from lhotse import CutSet, RecordingSet, SupervisionSet

    store, items, _result = exported
    cuts = CutSet.from_file(store.path("exports/ds1/lhotse/kws_cuts_train.jsonl.gz"))
    assert len(cuts) == 3
    recs = RecordingSet.from_file(store.path("exports/ds1/lhotse/kws_recordings_test.jsonl.gz"))
    sups = SupervisionSet.from_file(store.path("exports/ds1/lhotse/kws_supervisions_test.jsonl.gz"))
    assert len(recs) == len(sups) == 1
    speech_cut = next(c for c in cuts if c.supervisions[0].text == SENTENCES[0])
    audio = speech_cut.load_audio()
    expected, rate = _source(store, items, speech_cut.id)
    assert audio.shape == (1, len(expected)) and speech_cut.sampling_rate == rate
    np.testing.assert_allclose(audio[0], expected, atol=1e-6)
    sup = speech_cut.supervisions[0]
    assert (sup.speaker, sup.language, sup.gender) == ("spk0", "en", "male")
    assert sup.custom["source_id"] == "doc-1"


def test_webdataset_pipeline_iterates_and_decodes(exported):
    import webdataset as wds

    store, items, result = exported
    shards = sorted(store.path(f) for f in result["webdataset"]["files"] if "/train/" in f)
    pipeline = wds.WebDataset(shards, shardshuffle=False, empty_check=False).map(
        lambda s: (s["__key__"], sf.read(io.BytesIO(s["flac"]), dtype="float32"), s["json"])
    )
    samples = list(pipeline)
    assert len(samples) == 3
    key, (audio, rate), meta = samples[0]
    expected, expected_rate = _source(store, items, key)
    assert rate == expected_rate
    np.testing.assert_array_equal(audio, expected)
    meta = json.loads(meta)
    assert meta["id"] == key and meta["split"] == "train" and meta["text"] in SENTENCES


def test_nemo_manifest_points_at_decodable_audio(exported):
    store, _, _ = exported
    lines = store.read_bytes("exports/ds1/nemo/train_manifest.json").decode().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 3
    for entry in entries:
        assert {"audio_filepath", "text", "duration", "speaker", "lang"} <= set(entry)
        audio, rate = sf.read(entry["audio_filepath"], dtype="float32")
        assert entry["duration"] == pytest.approx(len(audio) / rate, abs=1e-5)
        assert os.path.isabs(entry["audio_filepath"])


def test_export_is_deterministic(exported, tmp_path):
    store, items, result = exported
    again = export_all(
        store, items.to_pandas(), EXPORT_FORMATS, "exports/ds2", name="kws", shard_items=2
    )
    for fmt in EXPORT_FORMATS:
        for a, b in zip(result[fmt]["files"], again[fmt]["files"], strict=True):
            if fmt in ("hf", "webdataset") or a.endswith(".gz"):
                assert store.read_bytes(a) == store.read_bytes(b), a


def test_manifest_only_exports_read_just_the_audio_headers(exported):
    store, items, _ = exported
    again = export_all(store, items, ["nemo", "lhotse"], "exports/ds3", name="kws")
    assert set(again) == {"nemo", "lhotse"}
    for split in ("train", "dev", "test"):
        rel = f"exports/ds1/nemo/{split}_manifest.json"
        assert store.read_bytes(rel) == store.read_bytes(rel.replace("ds1", "ds3"))


def test_missing_audio_stops_without_partial_files(tmp_path):
    store = Store(str(tmp_path / "out"))
    items = _items(store).to_pylist()
    items[4]["audio_path"] = "audio/zz/missing.flac"  # the test split's only item
    with pytest.raises(FileNotFoundError):
        export_all(store, pa.Table.from_pylist(items), ["hf", "webdataset", "lhotse"], "x")
    assert not store.exists("x/hf/data/test-00000-of-00001.parquet")
    assert not store.exists("x/lhotse/dataset_cuts_test.jsonl.gz")
    assert not glob.glob(os.path.join(store.path(""), "**", "*.tmp-*"), recursive=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"formats": ["hf", "tfrecord"]}, "unknown export format"),
        ({"formats": []}, "no export format"),
        ({"drop": "audio_path"}, "lack column"),
        ({"duplicate": True}, "duplicate ids"),
        ({"empty": True}, "no items"),
        ({"split": "train/x"}, "split names"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, change, message):
    store = Store(str(tmp_path / "out"))
    rows = [
        {"id": f"i{i}", "split": "train", "text": "t", "audio_path": f"audio/{i}.flac"}
        for i in range(2)
    ]
    if change.get("duplicate"):
        rows[1]["id"] = "i0"
    if "split" in change:
        rows[0]["split"] = change["split"]
    table = pa.Table.from_pylist(rows)
    if "drop" in change:
        table = table.drop_columns([change["drop"]])
    if change.get("empty"):
        table = table.slice(0, 0)
    with pytest.raises(ConfigError, match=message):
        export_all(store, table, change.get("formats", ["nemo"]), "x")


@pytest.mark.slow
def test_exports_to_object_storage(s3_server, s3_bucket):
    store = Store(f"s3://{s3_bucket}/root")
    items = _items(store)
    result = export_all(store, items, EXPORT_FORMATS, "exp", name="kws", shard_items=10)
    assert result["hf"]["counts"] == {"train": 3, "dev": 1, "test": 1}
    table = store.read_table("exp/hf/data/train-00000-of-00001.parquet")
    assert b"Audio" in table.schema.metadata[b"huggingface"]
    row = table.slice(0, 1).to_pylist()[0]
    expected, _ = _source(store, items, row["id"])
    np.testing.assert_array_equal(decode(row["audio"]["bytes"])[0], expected)
    nemo = json.loads(store.read_bytes("exp/nemo/dev_manifest.json").decode().splitlines()[0])
    assert nemo["audio_filepath"].startswith(f"s3://{s3_bucket}/root/audio/")
    import gzip

    rec = json.loads(gzip.decompress(store.read_bytes("exp/lhotse/kws_recordings_dev.jsonl.gz")))
    assert rec["sources"][0] == {"type": "url", "channels": [0], "source": nemo["audio_filepath"]}
    header_only = export_all(store, items, ["nemo"], "exp2", name="kws")
    assert header_only["nemo"]["counts"] == {"train": 3, "dev": 1, "test": 1}
    assert store.read_bytes("exp2/nemo/dev_manifest.json") == store.read_bytes(
        "exp/nemo/dev_manifest.json"
    )


@pytest.mark.slow
def test_noise_folder_on_object_storage(s3_server, s3_bucket):
    from audio_synth_core.dataset.augment import (
        AugmentationSpec,
        NoiseSpec,
        apply_augmentation,
        plan_augmentation,
        preflight_augmentation,
    )

    store = Store(f"s3://{s3_bucket}")
    store.write_bytes("noise/a/hum.flac", encode(tone(120.0, 1.0, 16000), 16000))
    spec = AugmentationSpec(noise=NoiseSpec(folder=f"s3://{s3_bucket}/noise", snr_db=(5, 5)))
    preflight_augmentation(spec)
    params = plan_augmentation(spec, "x", 0, 1)
    assert params["effects"][0]["file"] == f"s3://{s3_bucket}/noise/a/hum.flac"
    audio, rate = speech(SENTENCES[0])
    out = apply_augmentation(audio, rate, params)
    noise = (out - audio).astype(np.float64)
    snr = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(5.0, abs=0.5)
    missing = AugmentationSpec(noise=NoiseSpec(folder=f"s3://{s3_bucket}/nothing-here"))
    with pytest.raises(ConfigError, match="holds no audio"):
        preflight_augmentation(missing)
