"""Pipeline throughput versus two loops a user could write around the same engine, measured in one
run on the same machine: the pipeline's own bare loop (the project's EspeakGenerator and levels,
FLAC per item + one Parquet) and a raw-engine loop (libespeak-ng through ctypes, FLAC in memory,
files + one Parquet), both with the same number of processes.

    .venv/bin/python -m benchmarks.throughput --items 6000 --shard 500
    .venv/bin/python -m benchmarks.throughput --profile 300     # per-item cost of each stage

Prints utterances/s and audio-seconds per wall-second for all three and the pipeline's ratios
(targets: >= 0.95 of its bare loop, >= 0.75 of the raw engine); the loops neither watermark nor
attach C2PA manifests, so neither does that pipeline run, and a fourth run with the default config
(marked, with manifests) gives their cost. The Prefect API server is started
before timing (start-up amortizes at scale; it is one process per deployment, not per run); the
pipeline's time includes planning, the Dask LocalCluster, every task, metadata, MLflow logging and
the commit. ``--profile N`` times synthesis, FLAC, levels, sha256 and the file write on N items in
one process started with the workers' malloc settings (target: everything beyond synthesis at
most 50 % of synthesis).
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
    return _pool_loop(_baseline_worker, catalog, out, workers, chunk)


def _pool_loop(
    worker, catalog: Path, out: Path, workers: int, chunk: int
) -> tuple[float, int, float]:
    import pandas as pd

    df = pd.read_csv(catalog)
    rows = [(hashlib.sha256(t.encode()).hexdigest()[:20], t) for t in df["text"]]
    batches = [(rows[i : i + chunk], str(out)) for i in range(0, len(rows), chunk)]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        records = [r for part in pool.imap_unordered(worker, batches) for r in part]
    pd.DataFrame(records).to_parquet(out / "items.parquet")
    wall = time.perf_counter() - start
    return wall, len(records), sum(r["duration_s"] for r in records)


class RawEspeak:
    """What a user's own script does: libespeak-ng through ctypes, one voice and rate set once, no
    state reset between utterances, int16 PCM out (see generators/espeak_engine.py)."""

    def __init__(self, voice: bytes = b"gmw/en-US", rate_wpm: int = 175) -> None:
        import ctypes

        import espeakng_loader

        self._ct = ctypes
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        lib.espeak_SetSynthCallback.argtypes = [callback_type]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int]
        lib.espeak_Synth.argtypes += [
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        # AUDIO_OUTPUT_SYNCHRONOUS, 1000 ms buffers, the package's data, don't exit on error.
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate_hz = lib.espeak_Initialize(2, 1000, data_path, 0x8000)
        self._chunks: list[bytes] = []
        self._callback = callback_type(self._on_audio)  # referenced: ctypes frees it otherwise
        lib.espeak_SetSynthCallback(self._callback)
        if lib.espeak_SetVoiceByName(voice) != 0 or lib.espeak_SetParameter(1, rate_wpm, 0) != 0:
            raise RuntimeError(f"espeak rejected voice {voice!r} or rate {rate_wpm}")
        self._lib = lib

    def _on_audio(self, wav, n: int, _events) -> int:
        if n > 0 and wav:
            self._chunks.append(self._ct.string_at(wav, n * 2))
        return 0

    def synth(self, text: str):
        import numpy as np

        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        # POS_CHARACTER, espeakCHARS_UTF8 | espeakENDPAUSE: the flags the generator uses.
        if self._lib.espeak_Synth(data, len(data), 0, 1, 0, 1 | 0x1000, None, None) != 0:
            raise RuntimeError("espeak_Synth failed")
        return np.frombuffer(b"".join(self._chunks), dtype="<i2")


def _raw_worker(args: tuple[list[tuple[str, str]], str]) -> list[dict]:
    import io

    import soundfile as sf

    rows, out = args
    engine = RawEspeak()
    records = []
    for item_id, text in rows:
        pcm = engine.synth(text)
        buf = io.BytesIO()
        sf.write(buf, pcm, engine.sample_rate_hz, format="FLAC", subtype="PCM_16")
        data = buf.getvalue()
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
                "duration_s": len(pcm) / engine.sample_rate_hz,
            }
        )
    return records


def raw_engine(catalog: Path, out: Path, workers: int, chunk: int) -> tuple[float, int, float]:
    return _pool_loop(_raw_worker, catalog, out, workers, chunk)


def pipeline(
    catalog: Path, out: Path, workers: int, shard: int, default: bool = False
) -> tuple[float, int, float]:
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
        # Nor do the loops mark or sign their audio: the default run is a column of its own.
        "watermark": {"enabled": default},
        "provenance": {"c2pa": default},
    }
    start = time.perf_counter()
    run_catalog(cfg)
    wall = time.perf_counter() - start
    items = read_items(str(out))
    ok = items[items["status"] == "ok"]
    return wall, len(ok), float(ok["duration_s"].sum())


def profile(n: int, root: Path) -> None:
    """Per-item cost of each stage of the pipeline's hot path, on n catalog texts in one process."""
    import numpy as np
    import pandas as pd
    import pyloudnorm

    from audio_synth_core import audio
    from audio_synth_core.generators.base import SynthesisRequest
    from audio_synth_core.generators.espeak import EspeakGenerator
    from audio_synth_core.store.storage import Store

    make_catalog(root / "catalog.csv", n)
    texts = list(pd.read_csv(root / "catalog.csv")["text"])
    gen, raw, store = EspeakGenerator(rate_wpm=175), RawEspeak(), Store(str(root / "store"))
    rate = gen.sample_rate_hz
    stages = ["raw engine", "synthesis", "FLAC encode", "levels", "sha256", "write", "pyloudnorm"]
    seconds = dict.fromkeys(stages, 0.0)
    audio_s = 0.0

    def timed(stage: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        seconds[stage] += time.perf_counter() - start
        return out

    gen.generate([SynthesisRequest(texts[0], "en-us")])  # load the engine outside the timing
    for i, text in enumerate(texts):
        timed("raw engine", raw.synth, text)
        (samples,) = timed("synthesis", gen.generate, [SynthesisRequest(text, "en-us")])
        data = timed("FLAC encode", audio.encode, samples, rate, "flac")
        timed("levels", audio.levels, samples, rate)
        digest = timed("sha256", lambda d: hashlib.sha256(d).hexdigest(), data)
        timed("write", store.write_bytes, f"audio/{digest[:2]}/{i}.flac", data)
        # The reference meter that levels() replaced, for comparison only.
        timed("pyloudnorm", pyloudnorm.Meter(rate).integrated_loudness, samples.astype(np.float64))
        audio_s += len(samples) / rate
    synth = seconds["synthesis"]
    print(f"profile: {n} items, {audio_s / n:.2f} s average utterance, {rate} Hz, one process")
    print(f"{'stage':12} {'ms/item':>8} {'% of synthesis':>15}")
    for stage in stages:
        print(f"{stage:12} {seconds[stage] / n * 1e3:8.2f} {100 * seconds[stage] / synth:14.1f}%")
    beyond = sum(seconds[s] for s in ("FLAC encode", "levels", "sha256", "write"))
    print(
        f"beyond synthesis (FLAC + levels + sha256 + write): {beyond / n * 1e3:.2f} ms/item,"
        f" {100 * beyond / synth:.1f}% of synthesis (target <= 50%)"
    )
    ten = np.resize(samples, 10 * rate)  # a 10 s clip of speech
    start = time.perf_counter()
    for _ in range(200):
        audio.levels(ten, rate)
    print(
        f"levels of a 10 s clip: {(time.perf_counter() - start) / 200 * 1e3:.2f} ms (target ~1 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--shard", type=int, default=500, help="items per shard / per loop batch")
    parser.add_argument("--profile", type=int, metavar="N", help="time each stage on N items")
    parser.add_argument(
        "--no-default", action="store_true", help="skip the fourth run (default config, marked)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="audio-synth-bench-"))
    if args.profile:
        # In a process started like the pipeline's workers (their malloc settings change what
        # each stage costs: flows/compute.py WORKER_MALLOC).
        from flows.compute import WORKER_MALLOC

        os.environ.update({k: str(v) for k, v in WORKER_MALLOC.items()})
        with mp.get_context("spawn").Pool(1) as pool:
            pool.apply(profile, (args.profile, root))
        shutil.rmtree(root, ignore_errors=True)
        return
    from flows.runtime import prefect_api

    catalog = root / "catalog.csv"
    make_catalog(catalog, args.items)
    with prefect_api():
        results = {}
        # Pipeline first and the loops after, so a warm page cache favours the loops.
        results["pipeline"] = pipeline(catalog, root / "pipeline", args.workers, args.shard)
        results["bare loop"] = baseline(catalog, root / "baseline", args.workers, args.shard)
        results["raw engine"] = raw_engine(catalog, root / "raw", args.workers, args.shard)
        if not args.no_default:
            results["default"] = pipeline(catalog, root / "default", args.workers, args.shard, True)
    print(f"items={args.items} workers={args.workers} shard={args.shard} cores={os.cpu_count()}")
    print(f"{'':10} {'wall_s':>8} {'items':>7} {'utt/s':>8} {'audio_s/s':>10}")
    for name, (wall, n, audio_s) in results.items():
        print(f"{name:10} {wall:8.1f} {n:7d} {n / wall:8.1f} {audio_s / wall:10.1f}")
    pw, pn, pa = results["pipeline"]
    for name, target in (("bare loop", 0.95), ("raw engine", 0.75)):
        w, n, a = results[name]
        print(
            f"ratio pipeline/{name}: utterances/s {(pn / pw) / (n / w):.3f},"
            f" audio-s/s {(pa / pw) / (a / w):.3f} (target >= {target})"
        )
    if "default" in results:
        w, n, a = results["default"]
        print(
            "cost of the watermark and C2PA (the default config): default/bare pipeline"
            f" {(n / w) / (pn / pw):.3f}"
        )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
