"""Planning at scale (issue #10, item 1): a 1,000,000-row catalog planned in bounded memory.

    .venv/bin/python -m benchmarks.scale                 # 1,000,000 rows
    .venv/bin/python -m benchmarks.scale --rows 50000    # quick

The benchmark writes its own catalog (short product sentences, CSV; every 5,000th row has an empty
text, so failed rows are exercised too) and times, each step in a fresh process so that its peak
RSS (``ru_maxrss``) is its own:

1. ``dry-run``: what ``audio-synth run --dry-run`` does (build the plan, count, preview) against an
   empty output.
2. ``first``: the planning step of a real run (plan key, no finished run, build the plan, write its
   parts with ``runs.prepare``). Synthesis is NOT run: the step then fakes the finished run by
   writing the items parts the shards would have committed (every pending item ``ok`` with made-up
   measurements) and committing a manifest with the plan key, so the next plan sees a complete
   previous run. That faking is not timed.
3. ``noop``: the same catalog again: the planning step of a real run finds the finished run by its
   plan key (target: at most 5 % of step 2's time). ``replan`` times, for reference, what the flow
   would do without the key: a full plan where every item comes out unchanged.
4. ``changed``: 1 % of the rows get a new text; the planning step (plan + parts) must mark exactly
   those rows' items as to be generated (pending) and the rest unchanged.

Targets (2-core machine): peak RSS <= 1.5 GB, planning <= 120 s, no-op <= 5 % of the first run.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ADJECTIVES = ["sturdy", "quiet", "bright", "compact", "soft", "handy", "sleek", "warm", "light"]
NOUNS = ["kettle", "desk lamp", "travel mug", "wool blanket", "backpack", "chef's knife", "stool"]
ENDINGS = ["for every day.", "that lasts for years.", "in three colours.", "at a fair price."]


def _text(i: int, version: int = 0) -> str:
    if i % 5000 == 4999:
        return ""
    adj, noun = ADJECTIVES[i % len(ADJECTIVES)], NOUNS[(i // 9) % len(NOUNS)]
    again = " Now even better." if version else ""
    return f"The {adj} {noun} number {i} is made {ENDINGS[i % len(ENDINGS)]}{again}"


def write_catalog(path: Path, rows: int, changed: set[int] = frozenset()) -> None:
    """``rows`` rows id,text,language written in blocks (the writer stays small too)."""
    writer = None
    for start in range(0, rows, 100_000):
        idx = range(start, min(rows, start + 100_000))
        block = pa.table(
            {
                "id": [f"sku-{i:07d}" for i in idx],
                "text": [_text(i, int(i in changed)) for i in idx],
                "language": ["en"] * len(idx),
            }
        )
        if writer is None:
            writer = pacsv.CSVWriter(str(path), block.schema)
        writer.write_table(block)
    writer.close()


def _config(work: Path, catalog: Path) -> dict[str, Any]:
    return {
        "name": "scale",
        "catalog": {"path": str(catalog)},
        "output": {"url": str(work / "out")},
        "validation": {"enabled": False},
    }


def _planning_step(cfg, generator, store) -> tuple[Any, Any, str, list]:
    """What flows/catalog.py does before mapping shards: key, finished run?, plan, prepare."""
    from audio_synth_core.pipeline import planning, runs
    from audio_synth_core.store import layout

    key = planning.plan_key(cfg, generator)
    done = planning.finished_run(store, key)
    if done is not None:
        return None, done, key, []
    plan = planning.build_plan(cfg, generator, store)
    pending = runs.prepare(
        store,
        plan.items,
        plan.shards,
        layout.plan_dir(plan.run_id),
        lambda s: layout.items_part(s.run_id, s.name),
    )
    return plan, None, key, pending


def _fake_finished(store, plan, key: str) -> None:
    """Commit the items parts every shard would have written (pending -> ok), then the manifest."""
    from audio_synth_core.pipeline import runs
    from audio_synth_core.store import layout, schema

    items = plan.items
    pending = pc.equal(items.column("status"), "pending")
    made = {
        "status": pc.if_else(pending, schema.STATUS_OK, items.column("status")),
        "duration_s": pc.if_else(pending, 2.5, items.column("duration_s")),
        "sample_rate_hz": pc.if_else(
            pending, pa.scalar(22050, pa.int32()), items.column("sample_rate_hz")
        ),
        "sha256": pc.if_else(pending, "0" * 64, items.column("sha256")),
        # Paths as long as real ones: they are what the next plan carries for unchanged items.
        "audio_path": pc.binary_join_element_wise("audio/", items.column("id"), ".flac", ""),
        "audio_uri": pc.binary_join_element_wise(
            store.uri("audio/"), items.column("id"), ".flac", ""
        ),
        "run_id": pa.array([plan.run_id] * items.num_rows),
    }
    for name, column in made.items():
        i = items.schema.get_field_index(name)
        items = items.set_column(i, items.schema.field(i), column.cast(items.schema.field(i).type))
    offset = 0
    for spec in plan.shards:
        store.write_table(
            layout.items_part(plan.run_id, spec.name), items.slice(offset, spec.n_items)
        )
        offset += spec.n_items
    runs.commit(store, "catalog", plan.run_id, {"plan_key": key}, {})


def run_step(step: str, work: Path) -> dict[str, Any]:
    """One step in this process; returns its figures (peak RSS of this process included)."""
    from audio_synth_core.config.models import parse_config
    from audio_synth_core.generators.base import build_generator
    from audio_synth_core.pipeline import changes, planning, runs
    from audio_synth_core.store.storage import Store

    catalog = work / ("changed.csv" if step == "changed" else "catalog.csv")
    cfg = parse_config(_config(work, catalog))
    generator = build_generator("espeak", {})
    store = Store(cfg.output.url)
    out: dict[str, Any] = {"step": step}
    start = time.perf_counter()
    if step == "dry-run":
        plan = planning.build_plan(cfg, generator, Store(str(work / "empty")))
        preview = planning.preview(plan, Store(str(work / "empty")))
        out["seconds"] = time.perf_counter() - start
        out |= {k: preview[k] for k in ("items", "shards", "items_per_shard", "failed", "changes")}
    elif step == "replan":
        plan = planning.build_plan(cfg, generator, store)
        out["already_complete"] = runs.completed(store, plan.run_id) is not None
        out["seconds"] = time.perf_counter() - start
    else:
        plan, done, key, pending = _planning_step(cfg, generator, store)
        out["seconds"] = time.perf_counter() - start
        if done is not None:
            out["finished_run"] = done["run_id"]
        else:
            status = plan.items.column("status")
            todo = plan.items.filter(pc.equal(status, planning.STATUS_PENDING))
            out |= {
                "items": plan.items.num_rows,
                "shards": len(plan.shards),
                "pending_shards": len(pending),
                "to_generate": todo.num_rows,
                "to_generate_ids": sorted(set(todo.column("catalog_id").to_pylist()))
                if step == "changed"
                else None,
                "changes": changes.change_counts(changes.changes_table(plan.items, plan.gone)),
            }
            if step == "first":  # the planning step's own peak, before faking the run
                out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                fake = time.perf_counter()
                _fake_finished(store, plan, key)
                out["fake_finish_s"] = time.perf_counter() - fake
    out.setdefault("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def _child(step: str, work: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--step", step, "--workdir", str(work)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--step", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, args.workdir)))
        return
    work = Path(tempfile.mkdtemp(prefix="scale-", dir=args.workdir))
    try:
        t = time.perf_counter()
        write_catalog(work / "catalog.csv", args.rows)
        changed = set(range(0, args.rows, 100))  # 1 %
        write_catalog(work / "changed.csv", args.rows, changed)
        size_mb = (work / "catalog.csv").stat().st_size / 1e6
        print(
            f"catalog: {args.rows:,} rows, {size_mb:.0f} MB CSV (written in {time.perf_counter() - t:.1f} s)"
        )
        results = {s: _child(s, work) for s in ("dry-run", "first", "noop", "replan", "changed")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, r in results.items():
        extra = {
            k: v
            for k, v in r.items()
            if k not in ("step", "seconds", "peak_rss_mb", "to_generate_ids")
        }
        print(f"{name:>8}: {r['seconds']:8.2f} s  peak RSS {r['peak_rss_mb']:7.0f} MB  {extra}")
    first, noop, ch = results["first"], results["noop"], results["changed"]
    expected_ids = sorted(f"sku-{i:07d}" for i in changed if _text(i))
    exact = ch["to_generate_ids"] == expected_ids
    peak = max(r["peak_rss_mb"] for r in results.values())
    print(f"peak RSS (largest step): {peak:.0f} MB (target <= 1536)")
    print(
        f"planning (first run, plan + parts): {first['seconds']:.1f} s (target <= 120); "
        f"dry run {results['dry-run']['seconds']:.1f} s"
    )
    print(
        f"tasks: {first['shards']} shards of {results['dry-run']['items_per_shard']} items (target <= 2000)"
    )
    print(
        f"no-op re-run: {noop['seconds']:.2f} s = {noop['seconds'] / first['seconds']:.1%} of the first "
        f"(target <= 5%); full re-plan, all unchanged: {results['replan']['seconds']:.1f} s "
        f"= {results['replan']['seconds'] / first['seconds']:.0%}"
    )
    print(
        f"1% changed: {ch['to_generate']} items to generate for {len(changed)} changed rows "
        f"({len(expected_ids)} speakable); exactly those rows: {exact}; {ch['seconds']:.1f} s"
    )


if __name__ == "__main__":
    main()
