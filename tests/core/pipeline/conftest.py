"""A small catalog, its config and plan on a tmp_path store: what the pipeline tests share."""

from __future__ import annotations

import pytest

from audio_synth_core.config.models import parse_config
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import planning
from audio_synth_core.store.storage import Store
from tests.conftest import small_config, write_catalog

ROWS = [
    {"id": "a1", "text": "Hello there, general reader.", "language": "en"},
    {"id": "b2", "text": "Guten Tag.", "language": "de"},
    {"id": "c3", "text": "", "language": "en"},
    {"id": "d4", "text": "Bonjour.", "voice": "xx-nope"},
]


@pytest.fixture
def catalog_cfg(tmp_path):
    return parse_config(
        small_config(write_catalog(tmp_path / "c.csv", ROWS), str(tmp_path / "out"))
    )


@pytest.fixture
def store(catalog_cfg):
    return Store(catalog_cfg.output.url)


@pytest.fixture(scope="session")
def espeak():
    return build_generator("espeak", {})


@pytest.fixture
def plan(catalog_cfg, espeak, store):
    return planning.build_plan(catalog_cfg, espeak, store)


def prepare(store, plan):
    """The catalog flow's prepare step: plan parts written, shards without an items part."""
    from audio_synth_core.pipeline import runs
    from audio_synth_core.store import layout

    return runs.prepare(
        store,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )


@pytest.fixture
def generated(store, plan, espeak):
    """The plan's one shard, generated: (spec, committed item rows)."""
    from audio_synth_core.pipeline.generate import generate_shard
    from audio_synth_core.store import layout

    (spec,) = prepare(store, plan)
    generate_shard(spec, store, espeak)
    return spec, store.read_table(layout.items_part(plan.run_id, spec.name)).to_pylist()
