"""Catalog planning: content ids, seeds, per-row failures, changes against the previous run."""

from __future__ import annotations

import pyarrow as pa

from audio_synth_core.pipeline import planning, runs
from audio_synth_core.store import layout, schema

# Computed with the code before the core was regrouped (commit 49e90f6): the refactor must not
# change a single id, seed or run id, or every existing output would be regenerated.
GOLDEN_IDS = [
    "4b0a946c9246d0bfecbb",
    "81aacae05f1ab193d132",
    "5f7c89c41663b00b44ad",
    "3b424e9b16fc0d496b4b",
]
GOLDEN_SEEDS = [910115043, 1951732431, 0, 0]
# The run id hashes the schema version: "test-c96a62a68690" under version 1; version 2 (audio_path)
# names a new run, whose items an old output carries over as unchanged (no audio regenerated).
GOLDEN_RUN = "test-90d4c1fbb34b"


def test_plan_ids_seeds_and_run_id_are_stable(plan):
    assert plan.items.column("id").to_pylist() == GOLDEN_IDS
    assert plan.items.column("seed").to_pylist() == GOLDEN_SEEDS
    assert plan.run_id == GOLDEN_RUN
    assert [s.n_items for s in plan.shards] == [4]


def test_unspeakable_rows_become_failed_items_with_reasons(plan):
    rows = {r["catalog_id"]: r for r in plan.items.to_pylist()}
    assert rows["c3"]["status"] == schema.STATUS_FAILED and rows["c3"]["error"] == "empty text"
    assert rows["d4"]["status"] == schema.STATUS_FAILED and "xx-nope" in rows["d4"]["error"]
    assert rows["b2"]["voice"] == "de" and rows["b2"]["status"] == planning.STATUS_PENDING


def test_changes_against_the_previous_run(catalog_cfg, espeak, store, plan):
    # Pretend the previous complete run produced a1 (ok) and an item that is no longer planned.
    previous = plan.items.slice(0, 1).to_pylist()
    previous[0].update(status=schema.STATUS_OK, duration_s=1.5, sha256="ab" * 32)
    gone = {**previous[0], "id": "f" * 20, "catalog_id": "zz"}
    store.write_table(
        layout.items_part("old-run", "part-00000"),
        pa.Table.from_pylist([previous[0], gone], schema=schema.ITEM_SCHEMA),
    )
    runs.commit(store, "catalog", "old-run", {}, {})
    again = planning.build_plan(catalog_cfg, espeak, store)
    by_id = {r["id"]: r for r in again.items.to_pylist()}
    assert again.previous_run_id == "old-run"
    assert by_id[GOLDEN_IDS[0]]["change"] == schema.CHANGE_UNCHANGED
    assert by_id[GOLDEN_IDS[0]]["duration_s"] == 1.5  # carried, so it is not regenerated
    assert by_id[GOLDEN_IDS[1]]["change"] == schema.CHANGE_NEW
    counts = planning.change_counts(planning.changes_table(again))
    assert counts == {"new": 3, "unchanged": 1, "gone": 1}


def test_a_validate_run_in_between_does_not_hide_the_previous_catalog_run(
    catalog_cfg, espeak, store, plan
):
    first = plan.items.to_pylist()
    first[0].update(status=schema.STATUS_OK)
    store.write_table(
        layout.items_part("cat-run", "part-00000"),
        pa.Table.from_pylist(first, schema=schema.ITEM_SCHEMA),
    )
    runs.commit(store, "catalog", "cat-run", {}, {})
    runs.commit(store, "validate", "val-run", {}, {})
    again = planning.build_plan(catalog_cfg, espeak, store)
    assert again.previous_run_id == "cat-run"
