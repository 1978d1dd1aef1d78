"""The compare flow end to end: two registered model versions and an espeak baseline speak the
same prompts over a real Dask LocalCluster and Prefect API; results land in a real MLflow store
(parent + child runs), and the registry alias moves exactly when the decision says promote.

The two versions differ on purpose: v1 vocodes the untrained acoustic model's loud mels with
Griffin-Lim (~59% of samples clip), v2 with an untrained HiFiGAN, whose magnitude prior and tiny
initial weights keep it far below full scale (~0% clip). Both are unintelligible, so a gate on the
pass rate keeps the champion; deciding on clipping alone promotes v2.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from audio_synth_core.models.acoustic import AcousticConfig, AcousticModel
from audio_synth_core.models.features import MelConfig
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.registry import log_tts_model, set_alias
from audio_synth_core.models.tts import TTSModel
from audio_synth_core.models.vocoder import HiFiGAN, VocoderConfig
from tests.conftest import show
from tests.core.models.conftest import TEXTS, TINY_ACOUSTIC, TINY_VOCODER

pytestmark = pytest.mark.slow

MODEL = "tiny-tts"
PROMPTS = [*TEXTS, "Open the window."]


def _tiny(vocoder: str) -> TTSModel:
    torch.manual_seed(0)
    frontend = Frontend("espeak", "en-us").fit(TEXTS)
    acoustic = AcousticModel(
        AcousticConfig(n_symbols=len(frontend.vocabulary), decoder="deterministic", **TINY_ACOUSTIC)
    )
    if vocoder == "hifigan":
        return TTSModel(
            frontend, acoustic, MelConfig(), HiFiGAN(VocoderConfig.sized("tiny", **TINY_VOCODER))
        )
    return TTSModel(frontend, acoustic, MelConfig(), None, "griffinlim")


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A real SQLite MLflow store with versions 1 (griffinlim) and 2 (hifigan); champion -> 1.
    The variable is set before the flow starts its cluster, so workers inherit it too."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("models", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment("models")
    for vocoder in ("griffinlim", "hifigan"):
        with mlflow.start_run(run_name=vocoder):
            log_tts_model(_tiny(vocoder), registered_model_name=MODEL)
    set_alias(MODEL, "champion", 1)
    return uri


def _config(require_gates: dict) -> dict:
    return {
        "name": "cmp-test",
        "prompts": PROMPTS,
        "candidates": [
            {
                "label": "champion",
                "generator": {
                    "name": "neural",
                    "params": {"model_uri": f"models:/{MODEL}@champion", "device": "cpu"},
                },
            },
            {
                "label": "challenger",
                "generator": {
                    "name": "neural",
                    "params": {"model_uri": f"models:/{MODEL}/2", "device": "cpu"},
                },
            },
            {"label": "espeak", "generator": {"name": "espeak", "params": {"rate_wpm": 175}}},
        ],
        "validation": {
            "validators": [{"name": "quality"}, {"name": "intelligibility"}],
            "n_boot": 200,
            "report_samples": 3,
        },
        "metric": {"name": "clipping_ratio", "margin": 0.1},
        "promotion": {
            "model_name": MODEL,
            "alias": "champion",
            "challenger": "challenger",
            "incumbent": "champion",
            "require_gates": require_gates,
        },
        "compute": {"n_workers": 2, "retries": 0},
        "tracking": {"experiment": "compare-tests"},
    }


def _champion() -> str:
    from mlflow import MlflowClient

    return str(MlflowClient().get_model_version_by_alias(MODEL, "champion").version)


def test_compare_flow_promotes_exactly_when_the_decision_says_so(prefect_api, registry, tmp_path):
    from mlflow import MlflowClient

    from flows.compare import compare_flow

    out = str(tmp_path / "out")

    # 1) A required pass-rate gate the (unintelligible) challenger fails: keep, alias stays.
    kept = compare_flow(_config({"min_pass_rate": 0.5}), out)
    decision = kept["decision"]
    assert decision["promote"] is False and decision["alias_set"] is False
    assert decision["rule"] == "gate:min_pass_rate" and "min_pass_rate" in decision["reason"]
    assert decision["version"] == "2" and decision["alias_before"] == "1"
    assert _champion() == "1"
    # The same comparison again (nothing moved) is a complete run: returned as it is.
    again = compare_flow(_config({"min_pass_rate": 0.5}), out)
    assert again["completed_at"] == kept["completed_at"] and again["kind"] == "compare"
    shown = show(out)
    assert f"compare run {kept['run_id']}" in shown and "decision: keep" in shown

    table = pd.DataFrame(kept["table"])
    assert set(table["candidate"]) == {"champion", "challenger", "espeak"}
    assert {"clipping_ratio", "wer", "pass_rate"} <= set(table["metric"])
    clip = table[(table["metric"] == "clipping_ratio") & (table["candidate"] == "challenger")].iloc[
        0
    ]
    assert clip["reference"] == "champion" and clip["n_paired"] == len(PROMPTS)
    assert clip["diff_ci_low"] <= clip["diff_mean"] <= clip["diff_ci_high"] < 0  # v2 clips less
    measured = table[table["n"] >= 2]  # e.g. no LUFS for clips shorter than one LUFS block
    assert measured["ci_low"].notna().all() and measured["ci_high"].notna().all()
    assert (measured["ci_low"] <= measured["mean"] + 1e-12).all()
    espeak_wer = table[(table["metric"] == "wer") & (table["candidate"] == "espeak")].iloc[0]
    assert espeak_wer["mean"] < 0.4  # the baseline is real speech

    # Outputs: per-candidate audio + metrics Parquet, and the decision files.
    run_dir = tmp_path / "out" / "evaluations" / kept["evaluation_id"]
    for label in ("champion", "challenger", "espeak"):
        assert len(list((run_dir / label / "audio").glob("*.flac"))) == len(PROMPTS)
        assert len(pd.read_parquet(run_dir / label / "metrics.parquet")) == len(PROMPTS)
    report = (tmp_path / "out").joinpath(kept["report"].split("/out/", 1)[1]).read_text()
    assert report.count("<audio") == 3 * 3 and "gate:min_pass_rate" in report
    assert "KEEP THE INCUMBENT" in report

    # MLflow: one parent with a child per candidate, metrics, decision tags, artifacts.
    client = MlflowClient()
    parent = client.get_run(kept["mlflow_run_id"])
    assert parent.data.tags["compare.decision"] == "keep"
    assert parent.data.tags["compare.rule"] == "gate:min_pass_rate"
    assert "challenger.clipping_ratio.diff" in parent.data.metrics
    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {
        "comparison/table.csv",
        "comparison/table.json",
        "comparison/report.html",
        "comparison/decision.json",
    } <= artifacts
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert {c.data.tags["candidate"] for c in children} == {"champion", "challenger", "espeak"}
    by_label = {c.data.tags["candidate"]: c for c in children}
    assert by_label["champion"].data.params["generator.version"] == f"{MODEL}/1"
    assert by_label["challenger"].data.params["generator.version"] == f"{MODEL}/2"
    assert "clipping_ratio" in by_label["espeak"].data.metrics
    assert "generator.params.rate_wpm" in by_label["espeak"].data.params

    # 2) No gates: the challenger clips measurably less, so it is promoted and the alias moves.
    # The candidates' outputs are reused: the champion still resolves to version 1.
    promoted = compare_flow(_config({}), out)
    assert promoted["evaluation_id"] == kept["evaluation_id"]
    assert promoted["run_id"] != kept["run_id"] and promoted["kind"] == "compare"
    assert all(c["skipped"] for c in promoted["candidates"].values())
    decision = promoted["decision"]
    assert (
        decision["promote"] is True
        and decision["rule"] == "promote"
        and decision["alias_set"] is True
    )
    assert decision["improvement"] >= 0.1 and decision["diff_ci_high"] < 0
    assert _champion() == "2"
    parent = client.get_run(promoted["mlflow_run_id"])
    assert parent.data.tags["compare.decision"] == "promote"
    assert parent.data.tags["compare.alias"] == f"{MODEL}@champion -> 2"
    decision_file = json.loads(
        (tmp_path / "out")
        .joinpath(promoted["report"].split("/out/", 1)[1])
        .with_name("decision.json")
        .read_text()
    )
    assert decision_file["alias_set"] is True and decision_file["version"] == "2"


def test_gpu_candidates_are_annotated_only_where_workers_declare_a_gpu():
    from audio_synth_core.config.models import ComputeConfig
    from flows.compare import _runner

    # An existing cluster's GPU workers declare the resource themselves: annotate.
    assert _runner(ComputeConfig(dask_address="tcp://127.0.0.1:1"), True)[1] is True
    assert _runner(ComputeConfig(dask_address="tcp://127.0.0.1:1"), False)[1] is False
    # A LocalCluster declares this machine's GPU, or, without one, nothing: annotating would
    # leave the task unschedulable forever.
    runner, annotate = _runner(ComputeConfig(n_workers=1), True)
    assert annotate is torch.cuda.is_available()
    assert ("resources" in runner.cluster_kwargs) is annotate
