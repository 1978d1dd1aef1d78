"""One candidate over the prompts (compare/evaluate.py), with real espeak and validators: rows,
stored audio, recorded failures, and the id of a comparison's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio_synth_core.compare.evaluate import evaluate_candidate, evaluation_id
from audio_synth_core.compare.prompts import load_prompts
from audio_synth_core.compare.table import compare_table
from audio_synth_core.config.compare import parse_compare_config
from audio_synth_core.generators.espeak import EspeakGenerator
from audio_synth_core.validators.base import build_validator

from .conftest import config

ESPEAK = {"name": "espeak", "params": {"rate_wpm": 140}}


def test_evaluate_candidate_with_real_espeak_and_validators() -> None:
    cfg = parse_compare_config(
        config(
            prompts=["Call me back.", "The red door.", {"text": "Bonjour.", "language": "xx-nope"}],
            candidates=[
                {"label": "slow", "generator": {"name": "espeak", "params": {"rate_wpm": 140}}},
                {"label": "fast", "generator": {"name": "espeak", "params": {"rate_wpm": 200}}},
            ],
            promotion=None,
        )
    )
    prompts = load_prompts(cfg)
    validators = [build_validator("quality"), build_validator("intelligibility")]
    stored: dict[str, bytes] = {}

    def sink(name: str, data: bytes) -> str:
        stored[name] = data
        return f"mem://{name}"

    frames = {
        c.label: evaluate_candidate(c, prompts, validators, audio_sink=sink) for c in cfg.candidates
    }
    slow = frames["slow"]
    assert list(slow["prompt_id"]) == [p.id for p in prompts]
    ok = slow[slow["status"] == "ok"]
    assert len(ok) == 2 and ok["passed"].all() and (ok["wer"] <= 0.4).all()
    # Both candidates store under the same per-prompt names (the task gives each its own folder).
    assert ok["audio_uri"].str.startswith("mem://").all() and len(stored) == 2
    failed = slow.iloc[2]
    assert failed["status"] == "failed" and not failed["passed"] and "xx-nope" in failed["error"]
    assert failed["failed_checks"] == "generation"
    assert json.loads(slow["generator_params"].iloc[0])["rate_wpm"] == 140
    # Slower speech is longer on every prompt: the paired difference says so with certainty.
    table = compare_table(frames, ["duration_s", "pass_rate"], n_boot=200, reference="slow")
    dur = table[(table["candidate"] == "fast") & (table["metric"] == "duration_s")].iloc[0]
    assert dur["n_paired"] == 2 and dur["diff_mean"] < 0 and dur["diff_ci_high"] < 0
    rate = table[(table["candidate"] == "fast") & (table["metric"] == "pass_rate")].iloc[0]
    assert rate["n"] == 3 and rate["mean"] == pytest.approx(2 / 3)  # the failed prompt counts


class _SilentOnSecondPrompt(EspeakGenerator):
    """Real espeak speech, except that the second request comes back as non-finite samples."""

    def generate(self, requests):
        out = super().generate(requests)
        out[1] = np.full(1600, np.nan, dtype=np.float32)
        return out


def test_bad_audio_is_a_recorded_failure_and_the_columns_stay() -> None:
    cfg = parse_compare_config(
        config(
            prompts=["Call me back.", "The red door."],
            candidates=[{"label": "a", "generator": ESPEAK}, {"label": "b", "generator": ESPEAK}],
            promotion=None,
        )
    )
    prompts = load_prompts(cfg)
    frame = evaluate_candidate(
        cfg.candidates[0], prompts, [build_validator("quality")], generator=_SilentOnSecondPrompt()
    )
    assert list(frame["status"]) == ["ok", "failed"] and list(frame["passed"]) == [True, False]
    assert "non-finite" in frame["error"].iloc[1] and frame["failed_checks"].iloc[1] == "generation"
    # Every column is the prompt's, the generator's, or a validator's: no extra level columns.
    assert "integrated_lufs" in frame.columns and "sha256" in frame.columns
    only_intelligibility = evaluate_candidate(
        cfg.candidates[0], prompts[:1], [build_validator("intelligibility")]
    )
    assert "peak_dbfs" not in only_intelligibility.columns


def test_evaluation_id_names_what_determines_the_outputs() -> None:
    cfg = parse_compare_config(
        config(
            prompts=["Call me back.", "The red door."],
            candidates=[{"label": "a", "generator": ESPEAK}, {"label": "b", "generator": ESPEAK}],
            promotion=None,
        )
    )
    prompts = load_prompts(cfg)
    run_id = evaluation_id(cfg, prompts, cfg.candidates, "[]")
    assert run_id.startswith("compare-") and run_id == evaluation_id(
        cfg, prompts, cfg.candidates, "[]"
    )
    assert evaluation_id(cfg, prompts[:1], cfg.candidates, "[]") != run_id
    assert evaluation_id(cfg, prompts, cfg.candidates, '[{"name": "quality"}]') != run_id
