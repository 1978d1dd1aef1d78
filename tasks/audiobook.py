"""Audiobook tasks: one chapter (check, assemble, master, encode, ACX) and one book (sample, M4B,
book.json). Small dicts come back, never audio."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audio_synth_core.audiobook.deliver import (
    BookMeta,
    C2paSpec,
    DeliverySpec,
    deliver_book,
    deliver_chapter,
)
from audio_synth_core.audiobook.plan import ChapterPlan, ChunkRef
from audio_synth_core.plugins.cache import cached_generator, cached_validators
from audio_synth_core.store.storage import Store
from audio_synth_core.watermark import WatermarkSettings
from tasks.retry import retry_on_infrastructure


@task(
    name="deliver-chapter",
    task_run_name="chapter-{chapter.book_id}-{chapter.slot}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=retry_on_infrastructure,
)
def deliver_chapter_task(
    chapter: ChapterPlan,
    store: Store,
    meta: BookMeta,
    track: int,
    spec: DeliverySpec,
    generator: str,
    generator_params_json: str,
    validators_json: str | None,
    watermark: WatermarkSettings | None = None,
    c2pa: C2paSpec | None = None,
) -> dict[str, Any]:
    gen = cached_generator(generator, generator_params_json)
    validators = cached_validators(validators_json) if validators_json else ()
    result = deliver_chapter(store, chapter, meta, track, spec, gen, validators, watermark, c2pa)
    # The driver keeps a summary per chapter: cues and rule details stay in chapter.json.
    for f in result["files"]:
        f.pop("cues", None)
    result.pop("chunk_ids", None)
    return result


@task(
    name="deliver-book",
    task_run_name="book-{meta.book_id}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=retry_on_infrastructure,
)
def deliver_book_task(
    meta: BookMeta,
    store: Store,
    book_key: str,
    chapters: list[dict[str, Any]],
    sample: list[ChunkRef],
    takes: dict[str, str],
    durations: dict[str, float],
    sample_limits: tuple[float, float],
    spec: DeliverySpec,
    c2pa: C2paSpec | None = None,
) -> dict[str, Any]:
    return deliver_book(
        store, book_key, meta, chapters, sample, takes, durations, sample_limits, spec, c2pa
    )
