"""A generated and signed run on a tmp_path store: real espeak audio, real Ed25519 key."""

from __future__ import annotations

import pytest

from audio_synth_core.config.models import parse_config
from audio_synth_core.generators.base import build_generator
from audio_synth_core.pipeline import planning, runs
from audio_synth_core.pipeline.generate import generate_shard
from audio_synth_core.provenance.signing import Signer, new_private_key_pem
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from tests.conftest import small_config, write_catalog

ROWS = [
    {"id": "a1", "text": "Hello there, careful listener.", "language": "en"},
    {"id": "b2", "text": "Guten Tag.", "language": "de"},
    {"id": "c3", "text": "", "language": "en"},  # a failed item: no audio to list
]


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer(new_private_key_pem(), "test key")


@pytest.fixture
def generated_run(tmp_path):
    """(store, run id) of a one-shard catalog run whose shard is generated, not yet committed."""
    cfg = parse_config(small_config(write_catalog(tmp_path / "c.csv", ROWS), str(tmp_path / "out")))
    store = Store(cfg.output.url)
    generator = build_generator("espeak", {})
    plan = planning.build_plan(cfg, generator, store)
    pending = runs.prepare(
        store,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )
    for spec in pending:
        generate_shard(spec, store, generator)
    return store, plan.run_id


@pytest.fixture
def signed_run(generated_run, signer):
    """(store, run id, committed manifest) of a one-shard catalog run, signed at commit."""
    store, run_id = generated_run
    manifest = runs.commit(store, "catalog", run_id, {"items": "x"}, {}, signer=signer)
    return store, run_id, manifest
