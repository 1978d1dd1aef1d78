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
