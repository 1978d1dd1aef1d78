"""The validate flow on audio nobody here generated: metrics, per-item failures, fairness, gate."""

from __future__ import annotations

import csv
import json

import mlflow
import pytest
import soundfile as sf

from flows.api import read_items, validate_dataset
from flows.outcome import GateFailed
from tests.conftest import show
from tests.factories import SENTENCES, add_noise, hard_clip, speech

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def biased_dataset(tmp_path_factory):
    """Group 'a' clean; group 'b' half of it degraded with noise; one corrupt and one empty file."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "clips").mkdir()
    rows = []
    for i, text in enumerate(SENTENCES * 2):
        group = "a" if i % 2 == 0 else "b"
        audio, rate = speech(text, "en-us+f3" if group == "a" else "en-us+m7")
        if group == "b" and i % 4 == 1:
            audio = add_noise(audio, snr_db=3, seed=i)
        if i == 5:
            audio = hard_clip(audio, 24)
        path = f"clips/u{i:02d}.wav"
        sf.write(root / path, audio, rate)
        rows.append(
            {
                "path": path,
                "text": text,
                "group": group,
                "gender": "female" if group == "a" else "male",
            }
        )
    (root / "clips" / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 20)
    (root / "clips" / "empty.flac").write_bytes(b"")
    rows += [
        {"path": "clips/corrupt.wav", "text": "broken", "group": "a", "gender": "female"},
        {"path": "clips/empty.flac", "text": "empty", "group": "a", "gender": "female"},
    ]
    with (root / "metadata.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "text", "group", "gender"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def config(**gate):
    return {
        "validation": {
            "validators": [{"name": "quality"}, {"name": "intelligibility"}],
            "fairness_attributes": ["gender"],
            "n_boot": 200,
            "gate": {"min_pass_rate": 0.5, **gate},
        },
        "sharding": {"items_per_shard": 6},
        "compute": {"n_workers": 2, "retries": 0},
    }


def test_validate_folder_with_metadata(prefect_api, biased_dataset, tmp_path):
    out = tmp_path / "val"
    with pytest.raises(GateFailed, match="four-fifths rule: gender") as failed:
        validate_dataset(str(biased_dataset), str(out), config(fairness="fail"))
    manifest = failed.value.manifest
    items = read_items(str(out), manifest["run_id"]).set_index("catalog_id")
    assert len(items) == 18
    # Corrupt and empty files are per-item errors, not crashes.
    for bad in ("corrupt", "empty"):
        assert items.loc[bad, "failed_checks"] == "decode"
        assert "unreadable audio" in items.loc[bad, "validation_error"]
        assert items.loc[bad, "status"] == "failed"
    noisy = [f"u{i:02d}" for i in range(16) if i % 4 == 1]
    assert all("min_snr_db" in items.loc[n, "failed_checks"] for n in noisy)
    assert "max_clipping_ratio" in items.loc["u05", "failed_checks"]
    clean_a = [f"u{i:02d}" for i in range(0, 16, 2)]
    assert items.loc[clean_a, "passed"].all()
    assert items.loc[clean_a, "wer"].mean() < 0.25
    assert items.loc[noisy, "wer"].mean() > items.loc[clean_a, "wer"].mean()
    assert items.loc[clean_a, "sample_rate_hz"].eq(22050).all()
    # Report and MLflow record the failed gate.
    report = json.loads((out / "runs" / manifest["run_id"] / "reports" / "report.json").read_text())
    assert report["verdict"]["passed"] is False
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    run = mlflow.get_run(manifest["mlflow_run_id"])
    assert run.data.metrics["gate_passed"] == 0.0

    # Same data, fairness only warned about: the gate passes and the warning is kept.
    ok = validate_dataset(str(biased_dataset), str(tmp_path / "val2"), config(fairness="warn"))
    assert ok["gate"]["passed"]
    assert any("four-fifths" in w for w in ok["assessment"]["warnings"])
    shown = show(str(tmp_path / "val2"))
    assert f"validate run {ok['run_id']}" in shown and "gate: passed" in shown
    assert "status: {'ok': 16, 'failed': 2}" in shown


def test_missing_input_is_a_clear_error(prefect_api, tmp_path):
    from audio_synth_core.errors import CatalogError

    with pytest.raises(CatalogError, match="does not exist"):
        validate_dataset(str(tmp_path / "nope"), str(tmp_path / "out"), config())


def test_a_symlink_loop_does_not_fail_its_shard(prefect_api, tmp_path):
    """The reported case: a.wav -> b.wav -> a.wav next to good speech in the same shard. The run
    completes and reports; the loop is two failed rows, the speech is measured."""
    root = tmp_path / "folder"
    (root / "spk").mkdir(parents=True)
    for i, text in enumerate(SENTENCES[:4]):
        audio, rate = speech(text)
        sf.write(root / "spk" / f"u{i}.wav", audio, rate)
    (root / "spk" / "a.wav").symlink_to("b.wav")
    (root / "spk" / "b.wav").symlink_to("a.wav")
    (root / "spk" / "dangling.wav").symlink_to("gone.wav")
    out = tmp_path / "out"
    manifest = validate_dataset(
        str(root),
        str(out),
        {
            "validation": {
                "validators": [{"name": "quality", "params": {"min_duration_s": 0.2}}],
                "n_boot": 50,
                "gate": {"min_pass_rate": 0.5, "contract": "warn"},
            },
            "sharding": {"items_per_shard": 10},
            "compute": {"n_workers": 1, "retries": 0},
        },
    )
    assert manifest["n_shards"] == 1 and manifest["gate"]["passed"]
    items = read_items(str(out), manifest["run_id"]).set_index("catalog_id")
    assert len(items) == 7
    for name in ("spk/a", "spk/b"):
        assert items.loc[name, "failed_checks"] == "unreadable"
        assert "symbolic links" in items.loc[name, "validation_error"]
        assert f"{root}/{name}.wav" in items.loc[name, "validation_error"]
    assert items.loc["spk/dangling", "failed_checks"] == "missing_audio"
    good = items.loc[[f"spk/u{i}" for i in range(4)]]
    assert good["passed"].all() and (good["duration_s"] > 1.0).all()
    report = out / "runs" / manifest["run_id"] / "reports" / "report.json"
    assert json.loads(report.read_text())["verdict"]["passed"] is True
