"""The dataset task: one generated shard -> its dataset items (silence, augmented copies) and
one committed dataset part."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.dataset.shard import DatasetJob, make_dataset_shard
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.store.storage import Store
from tasks.retry import retry_on_infrastructure


# Results stay in memory (small dicts); the dataset part on storage is the cache.
@task(
    name="dataset-shard",
    task_run_name="dataset-{spec.name}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=retry_on_infrastructure,
)
def dataset_shard_task(spec: ShardSpec, store: Store, job: DatasetJob) -> dict[str, Any]:
    return make_dataset_shard(spec, store, job)
