"""The outcome of a run: assessment (fairness, contract, gate), reports, and MLflow logging."""

from __future__ import annotations

from typing import Any

import pandas as pd

from audio_synth_core.assessment.assess import (
    Assessment,
    assess_stored,
    docs_tempdir,
    write_reports,
)
from audio_synth_core.config.models import ValidationConfig
from audio_synth_core.errors import AudioSynthError
from audio_synth_core.store.storage import Store
from flows import tracking


class GateFailed(AudioSynthError):
    """The run finished and was reported, but it is not fit for use."""

    def __init__(self, message: str, manifest: dict[str, Any]) -> None:
        super().__init__(message)
        self.manifest = manifest


def assess_run(
    store: Store,
    run_id: str,
    cfg: ValidationConfig,
    audio_storage_options: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, Assessment, dict[str, str]]:
    """Join items and metrics, assess them, and write report.json/report.html + Data Docs.

    The run is read part by part: the returned frame holds its numbers and labels (one row per
    item; no ids, texts or URIs, ``assessment.run_table``), never its whole metadata.
    ``audio_storage_options`` reach audio outside the output (a validate run's input)."""
    with docs_tempdir() as docs:
        table, assessment = assess_stored(store, run_id, cfg, docs)
        urls = write_reports(store, run_id, table, assessment, cfg, docs, audio_storage_options)
    return table.frame, assessment, urls


def log_assessment(assessment: Assessment, store: Store, urls: dict[str, str]) -> None:
    """Inside an active MLflow run: gate metrics and the report files."""
    s = assessment.summary
    tracking.log_metrics(
        {
            "pass_rate": s.get("pass_rate"),
            "gate_passed": float(assessment.gate_passed),
            "privacy_flags": s.get("privacy_flags"),
            "quarantined": s.get("quarantined"),
            "contract_success": float(assessment.contract.success) if assessment.contract else None,
        }
    )
    files = {}
    for key in ("html", "json"):
        rel = urls[key][len(store.url) + 1 :]
        files[f"report.{key}"] = store.read_bytes(rel)
    tracking.log_files(files, "reports")


def gate_message(run_id: str, assessment: Assessment, urls: dict[str, str]) -> str:
    reasons = "; ".join(assessment.gate_reasons)
    return f"run {run_id} failed its gate: {reasons}. Report: {urls['html']}"
