"""Catalog planning: content ids, seeds, per-row failures, changes against the previous run."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from audio_synth_core.config.models import parse_config
from audio_synth_core.pipeline import changes, planning, runs
from audio_synth_core.store import layout, schema
from tests.conftest import small_config, write_catalog

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
# names a new run, whose items an old output carries over as unchanged (no audio regenerated);
# "test-90d4c1fbb34b" under version 2; version 3 (persona, watermark, provenance columns):
GOLDEN_RUN = "test-8b0555358c94"


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
    counts = changes.change_counts(changes.changes_table(again.items, again.gone))
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


def test_shards_grow_so_a_run_has_at_most_max_tasks(catalog_cfg, espeak, store, tmp_path):
    rows = [{"id": f"r{i}", "text": f"Sentence number {i}.", "language": "en"} for i in range(10)]
    cfg = parse_config(
        small_config(
            write_catalog(tmp_path / "ten.csv", rows),
            str(tmp_path / "out"),
            sharding={"items_per_shard": 2, "max_tasks": 3},
        )
    )
    plan = planning.build_plan(cfg, espeak, store)
    assert plan.items_per_shard == 4  # ceil(10 / 3), more than the configured 2
    assert [s.n_items for s in plan.shards] == [4, 4, 2]
    # Below the limit the configured size stands (what keeps existing run ids).
    assert planning.shard_size(10, cfg.sharding.model_copy(update={"max_tasks": 5})) == 2


def test_batches_give_the_same_plan_and_long_texts_become_several_chunks(tmp_path, espeak, store):
    long_text = " ".join(f"This is sentence {i} of a long product description." for i in range(40))
    rows = [
        {"id": "short", "text": "Short one.", "language": "en"},
        {"id": "long", "text": long_text, "language": "en"},
        {"id": "gone", "text": "", "language": "en"},
        {"id": "short", "text": "Duplicate id.", "language": "en"},
        {"id": "last", "text": "Last one.", "language": "en"},
    ]
    cfg = parse_config(small_config(write_catalog(tmp_path / "c.csv", rows), str(tmp_path / "o")))
    whole = planning.build_plan(cfg, espeak, store)
    one_by_one = planning.build_plan(cfg, espeak, store, batch_rows=1)
    assert one_by_one.items.equals(whole.items) and one_by_one.run_id == whole.run_id
    chunks = whole.items.filter(pc.equal(whole.items.column("catalog_id"), "long"))
    assert chunks.num_rows > 3  # 2,000+ characters at 400 per chunk
    assert chunks.column("chunk_index").to_pylist() == list(range(chunks.num_rows))
    assert " ".join(chunks.column("text").to_pylist()) == long_text
    assert len(set(whole.items.column("id").to_pylist())) == whole.items.num_rows


def _finish(store, plan, key):
    """Commit ``plan`` as a finished run (every pending item ok), as the catalog flow would."""
    done = plan.items.set_column(
        plan.items.schema.get_field_index("status"),
        plan.items.schema.field("status"),
        pa.array([schema.STATUS_OK] * plan.items.num_rows),
    )
    store.write_table(layout.items_part(plan.run_id, "part-00000"), done)
    return runs.commit(store, "catalog", plan.run_id, {"plan_key": key}, {})


def test_a_finished_plan_is_found_by_its_key_and_one_changed_row_is_all_that_is_new(
    tmp_path, espeak, store
):
    rows = [{"id": f"r{i}", "text": f"Item {i} is great.", "language": "en"} for i in range(6)]
    path = write_catalog(tmp_path / "c.csv", rows)
    cfg = parse_config(small_config(path, str(tmp_path / "o")))
    key = planning.plan_key(cfg, espeak)
    assert planning.finished_run(store, key) is None
    first = planning.build_plan(cfg, espeak, store)
    _finish(store, first, key)
    assert planning.finished_run(store, key)["run_id"] == first.run_id
    rows[2]["text"] = "Item 2 is even better now."
    write_catalog(path, rows)
    assert planning.plan_key(cfg, espeak) != key  # other bytes: plan again
    second = planning.build_plan(cfg, espeak, store)
    preview = planning.preview(second, store)
    assert preview["changes"] == {"new": 1, "unchanged": 5, "gone": 1}
    assert preview["to_generate"] == 1 and preview["complete"] is False
    pending = second.items.filter(pc.equal(second.items.column("status"), planning.STATUS_PENDING))
    assert pending.column("catalog_id").to_pylist() == ["r2"]


def test_preview_lists_failed_rows_with_reasons(plan, store):
    preview = planning.preview(plan, store, max_failed=1)
    assert preview["items"] == 4 and preview["shards"] == 1 and preview["failed"] == 2
    assert preview["failed_rows"] == [{"catalog_id": "c3", "error": "empty text"}]
    assert preview["to_generate"] == 2 and preview["changes"]["new"] == 4
