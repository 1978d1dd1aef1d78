"""Where things live under an output root. The only place that spells a path, so readers and
writers agree.

<root>/audio/<id[:2]>/<id>.<fmt>                  audio, content-addressed (shared by runs);
                                                  items record it relative (``audio_path``)
<root>/runs/<run_id>/plan/part-N.parquet          planned items of shard N
<root>/runs/<run_id>/items/part-N.parquet         item metadata of shard N (committed shard)
<root>/runs/<run_id>/validation/part-N.parquet    validator metrics + pass/fail of shard N
<root>/runs/<run_id>/changes.parquet              new / unchanged / gone ids versus the previous run
<root>/runs/<run_id>/reports/                     run reports
<root>/runs/<run_id>/decision/                    a compare run's table, decision and report
<root>/runs/<run_id>/manifest.json                written last: the run is complete when it exists
<root>/evaluations/<eval_id>/<label>/audio/...    a compare candidate's audio (shared by runs)
<root>/evaluations/<eval_id>/<label>/metrics.parquet   its per-prompt metrics (written last)
<root>/checkpoints/<train_id>/                    training checkpoints (resume)
<root>/models/<train_id>/                         a trained model (config.json written last)
<root>/quarantine/audio/...                       audio withheld by a validator (privacy)
<root>/LATEST.json                                the last complete run
<root>/LEASE.json                                 who works on this output now (pipeline/lease.py)
"""

from __future__ import annotations

LATEST = "LATEST.json"
LEASE = "LEASE.json"
RUNS = "runs"


def audio(item_id: str, fmt: str) -> str:
    """An item's audio, relative to the output root: what its ``audio_path`` column holds, so an
    output that is copied, moved or downloaded still finds it (``<root>/<audio_path>``)."""
    return f"audio/{item_id[:2]}/{item_id}.{fmt}"


def run_dir(run_id: str) -> str:
    return f"{RUNS}/{run_id}"


def plan_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/plan"


def plan_part(run_id: str, shard_name: str) -> str:
    return f"{plan_dir(run_id)}/{shard_name}.parquet"


def items_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/items"


def items_part(run_id: str, shard_name: str) -> str:
    return f"{items_dir(run_id)}/{shard_name}.parquet"


def validation_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/validation"


def validation_part(run_id: str, shard_name: str) -> str:
    return f"{validation_dir(run_id)}/{shard_name}.parquet"


def changes(run_id: str) -> str:
    return f"{run_dir(run_id)}/changes.parquet"


def reports_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/reports"


def decision_dir(run_id: str) -> str:
    return f"{run_dir(run_id)}/decision"


def manifest(run_id: str) -> str:
    return f"{run_dir(run_id)}/manifest.json"


def candidate_dir(eval_id: str, label: str) -> str:
    return f"evaluations/{eval_id}/{label}"


def candidate_audio(eval_id: str, label: str, name: str) -> str:
    return f"{candidate_dir(eval_id, label)}/audio/{name}"


def candidate_metrics(eval_id: str, label: str) -> str:
    """Written last: a candidate is evaluated exactly when this file exists."""
    return f"{candidate_dir(eval_id, label)}/metrics.parquet"


def checkpoints_dir(train_id: str) -> str:
    return f"checkpoints/{train_id}"


def model_dir(train_id: str) -> str:
    return f"models/{train_id}"


def quarantine(audio_rel: str) -> str:
    return f"quarantine/{audio_rel}"


# --- audiobook paths ---


# --- dataset paths ---


# --- responsible synthesis paths (watermark, provenance, consent, personas) ---
