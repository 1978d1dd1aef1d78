"""The first step of every generating run: withhold what the output's previous run of the same
kind made with a voice whose consent has since been revoked (``voices/revocation.py``), and say
so in the log, the manifest and the metrics."""

from __future__ import annotations

from typing import Any

from audio_synth_core.config.responsible import ConsentConfig
from audio_synth_core.pipeline import runs
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import revocation
from audio_synth_core.voices.personas import registry_store


def withhold_revoked(
    store: Store, cfg: ConsentConfig, kind: str, logger: Any
) -> dict[str, Any] | None:
    """Sweep the previous ``kind`` run of ``store``; what was withheld (None: nothing). Runs
    before planning, so the audio is withheld even when this run then fails its own consent
    check."""
    withheld = revocation.sweep(
        store,
        registry_store(cfg.registry_url, store),
        runs.latest_run_id(store, kind),
        cfg.on_revoked,
    )
    if withheld:
        logger.warning(
            "consent %s revoked: %s %d items of run %s made with %s, and %d files made from "
            "them (audit: %s)",
            ", ".join(withheld["consent_ids"]),
            "quarantined" if withheld["action"] == "quarantine" else "removed",
            withheld["items"],
            withheld["from_run_id"],
            ", ".join(withheld["personas"]),
            withheld["files"],
            withheld["audit"],
        )
    return withheld


def record(summary: dict[str, Any], withheld: dict[str, Any] | None) -> None:
    """Put what the sweep withheld into a run's summary (manifest) and metrics."""
    summary.setdefault("metrics", {})["items_withheld_consent"] = (
        withheld["items"] if withheld else 0
    )
    if withheld:
        summary["consent_revoked"] = withheld
