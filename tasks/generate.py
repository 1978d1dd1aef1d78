"""The generation task: one shard of items -> audio files + one committed metadata part."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.generation import cached_generator, generate_shard
from audio_synth_core.planning import ShardSpec
from audio_synth_core.storage import Store


# Results stay in memory (small dicts); caching is off because outputs on storage are the cache.
@task(
    name="generate-shard",
    task_run_name="generate-{spec.name}",
    cache_policy=NO_CACHE,
    persist_result=False,
)
def generate_shard_task(
    spec: ShardSpec, store: Store, generator: str, generator_params_json: str, batch_size: int
) -> dict[str, Any]:
    gen = cached_generator(generator, generator_params_json)
    return generate_shard(spec, store, gen, batch_size).as_dict()
