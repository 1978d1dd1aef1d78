"""The CLI as a user's shell script sees it: bad input fails before any server starts with one
``error:`` line and exit 2 (tracebacks only in the log file or with --debug), and a successful run
exits cleanly after its summary, leaving nothing but its outputs.

Each case is a real ``audio-synth`` process (AUDIO_SYNTH_HOME in tmp_path, no PREFECT_API_URL, so a
successful run starts and stops its own Prefect server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, small_config, write_catalog

CLI = str(Path(sys.executable).with_name("audio-synth"))
API_ERROR = "Error logging to API"


def _cli(home: Path, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env["AUDIO_SYNTH_HOME"] = str(home)
    for key in ("DASK_TEMPORARY_DIRECTORY", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    return subprocess.run(
        [CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s
    )


def _config(tmp_path: Path, name: str = "run", **overrides) -> Path:
    catalog = write_catalog(
        tmp_path / "catalog.csv",
        [{"id": "a", "text": "Hello there."}, {"id": "b", "text": "A second line."}],
    )
    cfg = small_config(
        catalog,
        str(tmp_path / "out"),
        compute={"n_workers": 1},
        validation={"enabled": False},
        tracking={"sample_audio": 1},
    )
    for section, values in overrides.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _assert_one_clear_error(result: subprocess.CompletedProcess, home: Path, *names: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    for name in names:
        assert name in out, out
    assert "Traceback" not in out and API_ERROR not in out, out
    log = home / "logs" / "errors.log"
    assert str(log) in errors[0], out  # the line says where the traceback went
    assert "Traceback" in log.read_text()


def _bad_run_cases(tmp_path: Path) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    missing_catalog = _config(tmp_path, "missing", catalog={"path": str(tmp_path / "nope.csv")})
    good = _config(tmp_path)
    bad_field = tmp_path / "bad.yaml"
    bad_field.write_text("catalog: {path: x.csv}\nsharding: {items_per_shard: -1}\n")
    return {
        "missing catalog": (["run", str(missing_catalog)], ("nope.csv", "does not exist")),
        "unwritable output": (
            ["run", str(good), "-o", str(blocker / "out")],
            (str(blocker / "out"), "in the way"),
        ),
        "unknown protocol": (["run", str(good), "-o", "nosuch://x/y"], ("nosuch://x/y",)),
        "bad config": (["run", str(bad_field)], ("sharding.items_per_shard",)),
        "missing config": (["run", str(tmp_path / "none.yaml")], ("cannot read configuration",)),
        "dead scheduler": (
            ["run", str(good), "--dask-address", "tcp://127.0.0.1:1"],
            ("tcp://127.0.0.1:1",),
        ),
        "validate: missing input": (
            ["validate", str(tmp_path / "no-input"), "-o", str(tmp_path / "v")],
            ("no-input", "does not exist"),
        ),
        "train: unwritable output": (
            ["train", str(REPO / "configs/train-demo.yaml"), "-o", str(blocker / "t")],
            (str(blocker / "t"),),
        ),
        "compare: unwritable output": (
            ["compare", str(REPO / "configs/compare-demo.yaml"), "-o", str(blocker / "c")],
            (str(blocker / "c"),),
        ),
    }


CASES = [
    "missing catalog",
    "unwritable output",
    "unknown protocol",
    "bad config",
    "missing config",
    "dead scheduler",
    "validate: missing input",
    "train: unwritable output",
    "compare: unwritable output",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_before_any_server(tmp_path, case):
    args, names = _bad_run_cases(tmp_path)[case]
    home = tmp_path / "home"
    result = _cli(home, *args, timeout_s=120)
    _assert_one_clear_error(result, home, *names)
    # Nothing was started: no Prefect server log, no Dask scratch space, no MLflow database.
    assert not (home / "prefect-server.log").exists()
    assert not (home / "dask").exists()
    assert not (tmp_path / "out").exists()


def test_missing_bucket_exits_2_naming_the_url(tmp_path, s3_server):
    home = tmp_path / "home"
    result = _cli(home, "run", str(_config(tmp_path)), "-o", "s3://no-such-bucket/x")
    _assert_one_clear_error(result, home, "s3://no-such-bucket/x", "bucket does not exist")


def test_debug_prints_the_traceback(tmp_path):
    home = tmp_path / "home"
    cfg = _config(tmp_path, catalog={"path": str(tmp_path / "nope.csv")})
    result = _cli(home, "--debug", "run", str(cfg))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "CatalogError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: catalog")


def test_successful_run_exits_clean_and_leaves_only_its_outputs(tmp_path):
    home = tmp_path / "home"
    cfg = _config(tmp_path)
    first = _cli(home, "run", str(cfg))
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    assert "2 ok, 0 failed, 2 generated" in first.stdout
    assert API_ERROR not in out and "Traceback" not in out, out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "LATEST.json",
        "audio",
        "mlartifacts",
        "mlflow.db",
        "runs",
    ]
    # A no-op re-run (the run is complete) is as clean.
    again = _cli(home, "run", str(cfg))
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "2 ok, 0 failed" in again.stdout
    assert API_ERROR not in out and "Traceback" not in out, out
    # The run's own Prefect server was stopped, and only after Prefect's workers drained.
    assert "Error" not in (home / "prefect-server.log").read_text()


def test_check_readable_names_what_is_missing(tmp_path):
    from audio_synth_core.errors import CatalogError
    from flows.prepare import check_readable

    (tmp_path / "there.csv").write_text("id,text\n")
    check_readable(str(tmp_path / "there.csv"), "catalog")
    check_readable(str(tmp_path), "input")  # a folder is listed, not opened
    with pytest.raises(CatalogError, match="catalog .*gone.csv' does not exist"):
        check_readable(str(tmp_path / "gone.csv"), "catalog")
    with pytest.raises(CatalogError, match=r"cannot read input 'nosuch://x'.*unknown URL protocol"):
        check_readable("nosuch://x", "input")


def test_failed_gate_exits_3_without_prefects_traceback(tmp_path):
    import soundfile as sf

    from tests.factories import tone

    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "ok.wav", tone(), 16000)
    (data / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 20)
    cfg = tmp_path / "validate.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "validation": {"validators": [{"name": "quality"}], "gate": {"min_pass_rate": 1.0}},
                "compute": {"n_workers": 1},
            }
        )
    )
    home = tmp_path / "home"
    result = _cli(home, "validate", str(data), "-o", str(tmp_path / "v"), "-c", str(cfg))
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert "gate failed:" in result.stderr and "gate FAILED" in result.stdout
    # Prefect still says the flow failed, in one line; its traceback is only shown with --debug.
    assert "Traceback" not in out and API_ERROR not in out, out
