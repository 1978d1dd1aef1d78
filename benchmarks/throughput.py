"""Pipeline throughput versus a bare multiprocessing loop that calls the same engine and writes the
same files (FLAC per item + one Parquet), measured in one run on the same machine.

    .venv/bin/python -m benchmarks.throughput --items 20000

Prints utterances/s and audio-seconds per wall-second for both, and their ratio (target >= 0.9).
The Prefect API server is started before timing (start-up amortizes at scale; it is one process
per deployment, not per run); the pipeline's time includes planning, the Dask LocalCluster,
every task, metadata, MLflow logging and the commit.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from flows.runtime import configure_environment

configure_environment()  # before Prefect is imported

SUBJECTS = [
    "This kettle",
    "Our oak desk",
    "The travel mug",
    "A wool blanket",
    "The reading lamp",
    "This backpack",
    "The chef's knife",
    "Our rain jacket",
]
CLAIMS = [
    "is built to last for many years of daily use",
    "ships in fully recycled packaging",
    "was tested in our workshop before it left",
    "comes with a generous two year warranty",
    "folds flat so it fits in a small cupboard",
    "is easy to clean with a damp cloth",
]


def make_catalog(path: Path, n: int) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id,text,language\n")
        for i in range(n):
            parts = [
                f"{rng.choice(SUBJECTS)} {rng.choice(CLAIMS)}." for _ in range(rng.randint(2, 4))
            ]
            fh.write(f"b{i:07d},{' '.join(parts)} Item {i}.,en\n")


def _baseline_worker(args: tuple[list[tuple[str, str]], str]) -> list[dict]:
    from audio_synth_core import audio
    from audio_synth_core.generators.base import SynthesisRequest
    from audio_synth_core.generators.espeak import EspeakGenerator

    rows, out = args
    gen = EspeakGenerator(rate_wpm=175)
    records = []
    for item_id, text in rows:
        (samples,) = gen.generate([SynthesisRequest(text, "en-us")])
        data = audio.encode(samples, gen.sample_rate_hz, "flac")
        path = Path(out, item_id[:2], f"{item_id}.flac")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        records.append(
            {
                "id": item_id,
                "text": text,
                "sha256": hashlib.sha256(data).hexdigest(),
                "duration_s": len(samples) / gen.sample_rate_hz,
                **audio.levels(samples, gen.sample_rate_hz).as_dict(),
            }
        )
    return records


def baseline(catalog: Path, out: Path, workers: int, chunk: int) -> tuple[float, int, float]:
    import pandas as pd

    df = pd.read_csv(catalog)
    rows = [(hashlib.sha256(t.encode()).hexdigest()[:20], t) for t in df["text"]]
    batches = [(rows[i : i + chunk], str(out)) for i in range(0, len(rows), chunk)]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        records = [r for part in pool.imap_unordered(_baseline_worker, batches) for r in part]
    pd.DataFrame(records).to_parquet(out / "items.parquet")
    wall = time.perf_counter() - start
    return wall, len(records), sum(r["duration_s"] for r in records)


def pipeline(catalog: Path, out: Path, workers: int, shard: int) -> tuple[float, int, float]:
    from flows.api import read_items, run_catalog

    cfg = {
        "name": "bench",
        "catalog": {"path": str(catalog)},
        "generator": {"name": "espeak", "params": {"rate_wpm": 175}},
        "output": {"url": str(out)},
        "sharding": {"items_per_shard": shard, "batch_size": 64},
        "compute": {"n_workers": workers},
        "tracking": {"experiment": "benchmark", "sample_audio": 2},
        # The baseline does no validation, so neither does the pipeline here: same work on both sides.
        "validation": {"enabled": False},
    }
    start = time.perf_counter()
    run_catalog(cfg)
    wall = time.perf_counter() - start
    items = read_items(str(out))
    ok = items[items["status"] == "ok"]
    return wall, len(ok), float(ok["duration_s"].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--shard", type=int, default=500, help="items per shard / per baseline batch"
    )
    args = parser.parse_args()
    from flows.runtime import prefect_api

    root = Path(tempfile.mkdtemp(prefix="audio-synth-bench-"))
    catalog = root / "catalog.csv"
    make_catalog(catalog, args.items)
    with prefect_api():
        results = {}
        # Pipeline first and baseline second, so a warm page cache favours the baseline.
        results["pipeline"] = pipeline(catalog, root / "pipeline", args.workers, args.shard)
        results["baseline"] = baseline(catalog, root / "baseline", args.workers, args.shard)
    print(f"items={args.items} workers={args.workers} shard={args.shard} cores={os.cpu_count()}")
    print(f"{'':10} {'wall_s':>8} {'items':>7} {'utt/s':>8} {'audio_s/s':>10}")
    for name, (wall, n, audio_s) in results.items():
        print(f"{name:10} {wall:8.1f} {n:7d} {n / wall:8.1f} {audio_s / wall:10.1f}")
    (pw, pn, pa), (bw, bn, ba) = results["pipeline"], results["baseline"]
    print(
        f"ratio pipeline/baseline: utterances/s {(pn / pw) / (bn / bw):.3f}, audio-s/s {(pa / pw) / (ba / bw):.3f}"
    )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
