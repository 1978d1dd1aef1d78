"""The first step of every generating run: withhold what any run of the output (every kind, not
yet swept for that consent) made with a voice whose consent has since been revoked
(``voices/revocation.py``), and say so in the log, the manifest and the metrics."""

from __future__ import annotations

from typing import Any

from audio_synth_core.config.responsible import ConsentConfig
from audio_synth_core.store.storage import Store
from audio_synth_core.voices import revocation
from audio_synth_core.voices.personas import registry_store


def withhold_revoked(
    store: Store, cfg: ConsentConfig, kind: str, logger: Any
) -> revocation.Sweep | None:
    """Sweep the runs of ``store`` not yet swept for each revoked consent; what was done (None:
    no consent is revoked). Runs before planning, so the audio is withheld even when this
    ``kind`` run then fails its own consent check."""
    done = revocation.sweep(store, registry_store(cfg.registry_url, store), cfg.on_revoked)
    for run in done.runs if done else []:
        logger.warning(
            "before this %s run: consent %s revoked: %s %d items of %s run %s made with %s, "
            "and %d files made from them (audit: %s)",
            kind,
            ", ".join(run.consent_ids),
            "quarantined" if done.action == "quarantine" else "removed",
            len(run.items),
            run.kind or "incomplete",
            run.run_id,
            ", ".join(run.personas),
            len(run.files),
            run.audit,
        )
    return done


def record(summary: dict[str, Any], withheld: revocation.Sweep | None) -> None:
    """Put what the sweep withheld into a run's summary (manifest) and metrics: how many items,
    and how many runs it had to read (0 once every run is swept)."""
    metrics = summary.setdefault("metrics", {})
    metrics["items_withheld_consent"] = withheld.items if withheld else 0
    metrics["runs_swept_consent"] = len(withheld.scanned) if withheld else 0
    found = withheld.summary() if withheld else None
    if found:
        summary["consent_revoked"] = found
