"""The audio-synth command line: help, voices, and bad input before any server starts."""

from __future__ import annotations

from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def test_help_explains_every_command_and_option():
    out = runner.invoke(app, ["run", "--help"]).output
    for option in ("--output", "--dask-address", "--workers"):
        assert option in out
    top = runner.invoke(app, ["--help"]).output
    for command in ("run", "validate", "train", "voices", "show", "--debug"):
        assert command in top


def test_bad_input_is_one_error_line_and_its_traceback_is_logged(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_SYNTH_HOME", str(tmp_path / "home"))
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    log = tmp_path / "home" / "logs" / "errors.log"
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: cannot read configuration {tmp_path / 'nope.yaml'}: No such file or directory"
        f" [traceback: {log}]"
    ]
    assert "ConfigError" in log.read_text() and "Traceback" in log.read_text()


def test_voices_lists_espeak_voices():
    result = runner.invoke(app, ["voices", "--language", "de", "--json"])
    assert result.exit_code == 0
    assert '"name": "de"' in result.output


def test_bad_config_exits_2_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("catalog: {path: x.csv}\nsharding: {items_per_shard: -1}\n")
    result = runner.invoke(app, ["run", str(bad)])
    assert result.exit_code == 2
    assert "sharding.items_per_shard" in result.output
    missing = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read configuration" in missing.output


def test_show_without_runs_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["show", str(tmp_path)])
    assert result.exit_code == 2 and "no complete run" in result.output


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    import yaml

    from tests.conftest import small_config, write_catalog

    rows = [
        {"id": "a", "text": "Hello there.", "language": "en"},
        {"id": "b", "text": "", "language": "en"},
        {"id": "c", "text": "Bonjour.", "voice": "xx-nope"},
    ]
    out = tmp_path / "out"
    cfg = small_config(write_catalog(tmp_path / "c.csv", rows), str(out))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = runner.invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("dry run test-") and "1 items to generate" in lines[0]
    assert "items 3 in 1 shards of 4" in result.output
    assert "'new': 3, 'unchanged': 0, 'gone': 0" in result.output
    assert "  b: empty text" in result.output and "xx-nope" in result.output
    assert not out.exists()  # not even the output folder
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    # The Python API's dry run is the same preview, as a dict.
    from flows.api import run_catalog

    preview = run_catalog(cfg, dry_run=True)
    assert preview["dry_run"] and preview["items"] == 3 and preview["failed"] == 2
    assert not out.exists()
