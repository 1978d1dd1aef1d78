"""Where things live under an output root. One place, so readers and writers agree.

<root>/audio/<id[:2]>/<id>.<fmt>         audio, content-addressed (shared by runs)
<root>/runs/<run_id>/plan/part-N.parquet   planned items of shard N
<root>/runs/<run_id>/items/part-N.parquet  item metadata of shard N (committed shard)
<root>/runs/<run_id>/validation/part-N.parquet  validator metrics + pass/fail of shard N
<root>/runs/<run_id>/changes.parquet       new / unchanged / gone ids versus the previous run
<root>/runs/<run_id>/reports/              run reports
<root>/runs/<run_id>/manifest.json         written last: the run is complete when it exists
<root>/quarantine/audio/...                audio withheld by a validator (privacy)
<root>/LATEST.json                         the last complete run
"""

from __future__ import annotations

LATEST = "LATEST.json"


def audio(item_id: str, fmt: str) -> str:
    return f"audio/{item_id[:2]}/{item_id}.{fmt}"


def run_dir(run_id: str) -> str:
    return f"runs/{run_id}"


def plan_part(run_id: str, shard_name: str) -> str:
    return f"runs/{run_id}/plan/{shard_name}.parquet"


def items_dir(run_id: str) -> str:
    return f"runs/{run_id}/items"


def items_part(run_id: str, shard_name: str) -> str:
    return f"{items_dir(run_id)}/{shard_name}.parquet"


def validation_dir(run_id: str) -> str:
    return f"runs/{run_id}/validation"


def validation_part(run_id: str, shard_name: str) -> str:
    return f"{validation_dir(run_id)}/{shard_name}.parquet"


def changes(run_id: str) -> str:
    return f"runs/{run_id}/changes.parquet"


def reports_dir(run_id: str) -> str:
    return f"runs/{run_id}/reports"


def manifest(run_id: str) -> str:
    return f"runs/{run_id}/manifest.json"


def quarantine(audio_rel: str) -> str:
    return f"quarantine/{audio_rel}"
