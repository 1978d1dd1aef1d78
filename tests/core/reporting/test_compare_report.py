"""The comparison report (reporting/compare_report.py): one self-contained page."""

from __future__ import annotations

from html import escape as html_escape

import numpy as np

from audio_synth_core import audio
from audio_synth_core.compare.promotion import decide_promotion
from audio_synth_core.compare.table import compare_table
from audio_synth_core.config.compare import CompareConfig, parse_compare_config
from audio_synth_core.reporting.compare_report import comparison_report_html
from tests.core.compare.conftest import CHALLENGER, NEURAL, OK_GATES, config, frames, synthetic
from tests.factories import speech


def test_report_is_self_contained_and_caps_players() -> None:
    a, b = synthetic(np.random.default_rng(3), 12, -0.1)
    table = compare_table(frames(a, b), ["wer", "pass_rate"], n_boot=200, reference="a")
    clip, rate = speech("Call me back.")
    data = audio.encode(clip, rate)
    samples = [
        {
            "prompt_id": f"p{i}",
            "text": f"prompt <{i}>",
            "clips": {
                "a": {
                    "audio_bytes": data,
                    "mime": "audio/flac",
                    "metrics": {"wer": a[i], "passed": True},
                },
                "b": {"error": "GenerationError: empty text"},
            },
        }
        for i in range(5)
    ]
    cfg: CompareConfig = parse_compare_config(
        config(
            candidates=[
                {"label": "a", "generator": NEURAL},
                {"label": "b", "generator": CHALLENGER},
            ],
            promotion={"model_name": "m", "challenger": "b", "incumbent": "a"},
        )
    )
    decision = decide_promotion(table, cfg)
    html = comparison_report_html(table, decision, samples, {"b": OK_GATES}, max_prompts=3)
    assert html.startswith("<!DOCTYPE html>") and "http" not in html.split("<body>", 1)[1]
    assert html.count("<audio") == 3 and "2 more prompts not shown" in html
    assert html.count("data:image/png;base64") == 2  # means and paired differences
    assert "prompt &lt;0&gt;" in html and "GenerationError: empty text" in html
    assert html_escape(decision.reason) in html and "PROMOTE" in html
