"""Comparison config (config/compare.py): every bad field is named, directions come from the
validators, the shipped config loads and round-trips."""

from __future__ import annotations

import pytest

from audio_synth_core.compare.prompts import load_prompts
from audio_synth_core.config.compare import load_compare_config, model_name_of, parse_compare_config
from audio_synth_core.errors import ConfigError
from tests.conftest import REPO
from tests.core.compare.conftest import CHALLENGER, NEURAL, config


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"candidates": [{"label": "a", "generator": NEURAL}]}, "candidates"),
        (
            {
                "candidates": [
                    {"label": "a", "generator": NEURAL},
                    {"label": "a", "generator": CHALLENGER},
                ]
            },
            "repeated: a",
        ),
        (
            {
                "candidates": [
                    {"label": "a b", "generator": NEURAL},
                    {"label": "c", "generator": CHALLENGER},
                ]
            },
            "candidates.0.label",
        ),
        (
            {
                "candidates": [
                    {"label": "a", "generator": {"name": "nope"}},
                    {"label": "c", "generator": CHALLENGER},
                ]
            },
            "unknown generator 'nope'",
        ),
        ({"metric": "mos_ovrl"}, "'mos_ovrl' is not measured"),
        ({"metric": {"name": "duration_s"}}, "metric.direction"),
        ({"metric": {"name": "wer", "margin": -1}}, "metric.margin"),
        ({"report_metrics": ["nope"]}, "'nope' is not measured"),
        (
            {"promotion": {"model_name": "m", "challenger": "x", "incumbent": "champion"}},
            "promotion.challenger: 'x'",
        ),
        (
            {"promotion": {"model_name": "m", "challenger": "champion", "incumbent": "champion"}},
            "must differ",
        ),
        (
            {
                "promotion": {
                    "model_name": "other",
                    "challenger": "challenger",
                    "incumbent": "champion",
                }
            },
            "models:/other/<version>",
        ),
        (
            {
                "promotion": {
                    "model_name": "m",
                    "challenger": "challenger",
                    "incumbent": "champion",
                    "require_gates": {"min_pass_rate": 2},
                }
            },
            "promotion.require_gates.min_pass_rate",
        ),
        ({"validation": {"gate": {"min_pass_rate": 0.5}}}, "validation.gate"),
        ({"prompts": ["a"], "prompts_path": "p.txt"}, "give one, not both"),
        ({"prompts": [""]}, "prompts.0.text"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_config_names_the_field(overrides: dict, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_compare_config(config(**overrides))
    assert named in str(err.value)


def test_direction_defaults_and_string_metric() -> None:
    assert parse_compare_config(config(metric="wer")).metric.direction == "lower"
    cfg = parse_compare_config(config(metric={"name": "snr_db"}))
    assert cfg.metric.direction == "higher"


def test_shipped_compare_config_loads() -> None:
    cfg = load_compare_config(REPO / "configs" / "compare-demo.yaml")
    assert cfg.metric.name == "wer" and cfg.promotion.model_name == "audio-synth-tts"
    assert {c.generator.params.get("rate_wpm") for c in cfg.candidates} >= {150, 190}
    assert len(load_prompts(cfg)) == 15
    # What the Python API passes to the flow (a dumped config) parses to the same config.
    assert parse_compare_config(cfg.model_dump(mode="json")) == cfg


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("models:/m/3", "m"),
        ("models:/m@champion", "m"),
        ("models:/a/b/4", "a/b"),
        ("runs:/abc/model", None),
        ("", None),
    ],
)
def test_model_name_of(uri: str, name: str | None) -> None:
    assert model_name_of(uri) == name
