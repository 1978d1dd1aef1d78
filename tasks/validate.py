"""The validation task: one shard of committed items -> one committed validation part."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.pipeline.validate import validate_shard
from audio_synth_core.plugins.cache import cached_validators
from audio_synth_core.store.storage import Store
from tasks.retry import retry_on_infrastructure


@task(
    name="validate-shard",
    task_run_name="validate-{spec.name}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=retry_on_infrastructure,
)
def validate_shard_task(
    spec: ShardSpec, store: Store, validators_json: str, audio_storage_options: dict[str, Any]
) -> dict[str, Any]:
    validators = cached_validators(validators_json)
    return validate_shard(spec, store, validators, audio_storage_options).as_dict()
