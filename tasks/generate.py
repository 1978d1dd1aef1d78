"""The generation task: one shard of items -> audio files + one committed metadata part, then
(validating as it goes) the shard's validation part."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.pipeline.runs import ShardSpec
from audio_synth_core.pipeline.validate import validate_shard
from audio_synth_core.plugins.cache import cached_generator, cached_validators
from audio_synth_core.provenance.c2pa import C2paMaterial
from audio_synth_core.store.storage import Store
from audio_synth_core.watermark import WatermarkSettings
from tasks.retry import retry_on_infrastructure


# Results stay in memory (small dicts); caching is off because outputs on storage are the cache.
@task(
    name="generate-shard",
    task_run_name="generate-{spec.name}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=retry_on_infrastructure,
)
def generate_shard_task(
    spec: ShardSpec,
    store: Store,
    generator: str,
    generator_params_json: str,
    batch_size: int,
    validators_json: str | None = None,
    watermark: WatermarkSettings | None = None,
    c2pa: C2paMaterial | None = None,
) -> dict[str, Any]:
    gen = cached_generator(generator, generator_params_json)
    summary = generate_shard(spec, store, gen, batch_size, watermark, c2pa).as_dict()
    if validators_json:
        checked = validate_shard(spec, store, cached_validators(validators_json))
        summary["validation"] = checked.as_dict()
    return summary
