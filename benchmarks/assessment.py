"""Run assessment at scale (issue #10, item 4): ``assess_run`` of a validated run in bounded memory.

    .venv/bin/python -m benchmarks.assessment --items 1000000
    .venv/bin/python -m benchmarks.assessment --items 100000     # quick

The benchmark writes a validated catalog run of ``--items`` items directly as Parquet parts, as
the shards would have committed them (``--items-per-part`` each; 500 is what planning picks for a
1,000,000-item catalog under ``sharding.max_tasks``): item parts with every item-schema column
(ids, texts, JSON attributes, URIs, hashes) and validation parts with the columns of the
validators of ``configs/catalog-demo.yaml`` (quality + intelligibility). Four languages, eight
voices, eight categories; 1% of the items failed generation, a few percent fail a check, and
non-English items have no WER, like the real validators write them. No audio is synthesized: only
the 8 items the report's sample players pick get a tiny real FLAC, so the players are exercised.

Then ``flows.outcome.assess_run`` (fairness, data contract, gate, report.json/report.html + Data
Docs, with the catalog-demo validation config) runs in a fresh process, which reports its RSS
after imports (the baseline: the libraries the step uses are imported first), the step's wall
time and the process's peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

RUN_ID = "bench-assess-000000000000"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "catalog-demo.yaml"
LANGUAGES = {
    "en": ("en-us+f3", "en-us+m1"),
    "de": ("de+f2", "de+m3"),
    "fr": ("fr-fr+f4", "fr-fr+m2"),
}
LANGUAGES["es"] = ("es+f1", "es+m4")
CATEGORIES = ["kitchen", "garden", "office", "toys", "books", "sports", "audio", "tools"]
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven"]
WORDS += ["bright", "kettles", "sing", "in", "tune"]
MEASURED = {"sample_rate_hz", "num_samples", "duration_s", *("peak_dbfs", "rms_dbfs"), "wer", "cer"}
MEASURED |= {"clipping_ratio", "silence_ratio", "integrated_lufs"}
N_SAMPLES = 8  # the report's players: the first 4 items are the worst, the last 4 the best


def _hex(seed: str, chars: int) -> str:
    return hashlib.blake2b(seed.encode(), digest_size=(chars + 1) // 2).hexdigest()[:chars]


def _measured(values: Any, typ: pa.DataType, failed: np.ndarray) -> pa.Array:
    """Null for failed items (and NaN: a metric not measured, e.g. WER of non-English items)."""
    values = np.asarray(values)
    missing = failed | np.isnan(values) if values.dtype.kind == "f" else failed
    return pa.array(values, typ, mask=missing)


def _part(index: int, start: int, n: int, total: int, root: str) -> tuple[pa.Table, pa.Table]:
    """One shard's items part and validation part (rows ``start`` .. ``start + n``)."""
    from audio_synth_core.store import layout, schema

    rng = np.random.default_rng(index)
    rows = np.arange(start, start + n)
    lang_names = list(LANGUAGES)
    lang = rng.integers(0, len(lang_names), n)
    gender = rng.integers(0, 2, n)
    failed = rng.random(n) < 0.01
    # The sample players' items: planted at the two ends of the run (see N_SAMPLES).
    worst = rows < N_SAMPLES // 2
    best = rows >= total - N_SAMPLES // 2
    failed &= ~(worst | best)
    ok = ~failed
    ids = [_hex(f"item-{i}", 20) for i in rows]
    rate = 22050
    duration = np.round(rng.uniform(1.5, 12.0, n) * rate) / rate
    english = np.array([lang_names[k] == "en" for k in lang])
    wer = np.where(english, np.abs(rng.normal(0.12, 0.1, n)), np.nan)
    snr = rng.normal(32, 6, n)
    wer[worst], wer[best] = np.nan, 0.0
    bad_wer, bad_snr = wer > 0.4, snr < 15
    bad_wer[best] = bad_snr[best] = False
    passed = ok & ~bad_wer & ~bad_snr & ~worst
    checks = [
        "generation"
        if failed[j]
        else ",".join(
            c
            for c, bad in (("max_wer", bad_wer[j]), ("min_snr_db", bad_snr[j]), ("x", worst[j]))
            if bad
        )
        or None
        for j in range(n)
    ]
    voices = [LANGUAGES[lang_names[k]][g] for k, g in zip(lang, gender, strict=True)]
    texts = [" ".join(rng.choice(WORDS, 12)) + f" item {i}." for i in rows]
    paths = [layout.audio(i, "flac") if o else None for i, o in zip(ids, ok, strict=True)]
    items = {
        "id": ids,
        "catalog_id": [f"sku-{i // 2:07d}" for i in rows],
        "chunk_index": (rows % 2).astype(np.int32),
        "text": texts,
        "voice": voices,
        "language": [lang_names[k] for k in lang],
        "generator": ["espeak"] * n,
        "generator_version": ["1.52"] * n,
        "generator_params": [json.dumps({"rate_wpm": 165, "pitch": 50})] * n,
        "seed": rng.integers(0, 2**31, n),
        "attributes": [
            json.dumps(
                {
                    "accent": lang_names[k],
                    "age_band": ("18-30", "31-50")[g],
                    "category": CATEGORIES[int(c)],
                    "gender": ("female", "male")[g],
                },
                sort_keys=True,
            )
            for k, g, c in zip(lang, gender, rng.integers(0, len(CATEGORIES), n), strict=True)
        ],
        "sample_rate_hz": np.full(n, rate),
        "num_samples": np.round(duration * rate).astype(np.int64),
        "duration_s": duration,
        "audio_uri": [f"{root}/{p}" if p else None for p in paths],
        "audio_path": paths,
        "audio_format": ["flac" if o else None for o in ok],
        "sha256": [_hex(f"audio-{i}", 64) if o else None for i, o in zip(ids, ok, strict=True)],
        "status": [schema.STATUS_OK if o else schema.STATUS_FAILED for o in ok],
        "error": [None if o else "GenerationError: espeak returned no audio" for o in ok],
        "peak_dbfs": -rng.uniform(1.0, 6.0, n),
        "rms_dbfs": rng.uniform(-24, -16, n),
        "clipping_ratio": np.zeros(n),
        "silence_ratio": rng.uniform(0.05, 0.3, n),
        "integrated_lufs": rng.uniform(-23, -15, n),
        "created_at": ["2026-11-21T08:00:00+00:00"] * n,
        "change": ["new"] * n,
        "run_id": [RUN_ID] * n,
    }
    columns = {}
    for f in schema.ITEM_SCHEMA:
        value = items.get(f.name)
        if value is None:
            columns[f.name] = pa.nulls(n, f.type)
        elif f.name in MEASURED:  # a failed item has no measurements
            columns[f.name] = _measured(value, f.type, failed)
        else:
            columns[f.name] = pa.array(value, f.type)
    item_table = pa.table(columns, schema=schema.ITEM_SCHEMA)
    metrics = {
        "id": ids,
        "passed": passed,
        "failed_checks": checks,
        "check_messages": [
            json.dumps([{"check": c, "value": None, "limit": None, "message": f"{c} failed"}])
            if c
            else None
            for c in checks
        ],
        "validation_error": [
            None if o else "GenerationError: espeak returned no audio" for o in ok
        ],
        "quarantined": np.zeros(n, dtype=bool),
        "sample_rate_hz": items["sample_rate_hz"],
        "num_samples": items["num_samples"],
        "duration_s": duration,
        "sha256": items["sha256"],
        "peak_dbfs": items["peak_dbfs"],
        "rms_dbfs": items["rms_dbfs"],
        "clipping_ratio": items["clipping_ratio"],
        "silence_ratio": items["silence_ratio"],
        "integrated_lufs": items["integrated_lufs"],
        "dc_offset": rng.normal(0, 1e-4, n),
        "snr_db": np.clip(snr, -20, 100),
        "wer": wer,
        "cer": wer * 0.6,
        "asr_text": [t if e else None for t, e in zip(texts, english, strict=True)],
        "asr_rtf": rng.uniform(0.03, 0.08, n),
        "asr_status": ["ok" if e else "not_english" for e in english],
    }
    from audio_synth_core.pipeline.validate import validation_schema

    val_schema = validation_schema(_validators())
    val_columns = {}
    for f in val_schema:
        value = metrics.get(f.name)
        if value is None:
            val_columns[f.name] = pa.nulls(n, f.type)
        elif f.name in MEASURED or f.name in ("dc_offset", "snr_db", "asr_rtf"):
            val_columns[f.name] = _measured(value, f.type, failed)
        else:
            val_columns[f.name] = pa.array(value, f.type, from_pandas=True)
    return item_table, pa.table(val_columns, schema=val_schema)


def _validators() -> list[Any]:
    """The catalog-demo validators' classes (their ``fields`` are all ``validation_schema`` reads)."""
    from audio_synth_core.config.models import ValidationConfig
    from audio_synth_core.plugins import registry as plugins

    return [plugins.load(plugins.VALIDATORS, s.name) for s in _config(ValidationConfig).validators]


def _config(model: Any) -> Any:
    import yaml

    return model.model_validate(yaml.safe_load(CONFIG.read_text())["validation"])


def build_run(out: Path, items: int, per_part: int) -> dict[str, Any]:
    """Write the run's parts (and the sample players' FLACs) under ``out``."""
    import soundfile as sf

    from audio_synth_core.store import layout
    from audio_synth_core.store.storage import Store

    store = Store(str(out))
    start = time.perf_counter()
    sample_ids = []
    for index, first in enumerate(range(0, items, per_part)):
        n = min(per_part, items - first)
        item_table, val_table = _part(index, first, n, items, store.url)
        name = f"part-{index:05d}"
        store.write_table(layout.items_part(RUN_ID, name), item_table)
        store.write_table(layout.validation_part(RUN_ID, name), val_table)
        ids = item_table.column("id").to_pylist()
        sample_ids += [
            i for r, i in enumerate(ids, first) if r < N_SAMPLES // 2 or r >= items - N_SAMPLES // 2
        ]
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(11025) / 22050)
    for item_id in sample_ids:
        path = Path(store.path(layout.audio(item_id, "flac")))
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone, 22050, format="FLAC")
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    return {"seconds": time.perf_counter() - start, "parquet_mb": size / 1e6}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def run_step(out: Path) -> dict[str, Any]:
    """``assess_run`` in this (fresh) process: baseline RSS after imports, wall time, peak RSS."""
    import fairlearn.metrics  # noqa: F401 - the step's libraries count in the baseline
    import great_expectations  # noqa: F401
    import matplotlib.figure  # noqa: F401

    from audio_synth_core.config.models import ValidationConfig
    from audio_synth_core.store.storage import Store
    from flows.outcome import assess_run

    cfg = _config(ValidationConfig)
    baseline = _rss_mb()
    start = time.perf_counter()
    result, assessment, urls = assess_run(Store(str(out)), RUN_ID, cfg)
    wall = time.perf_counter() - start
    report = json.loads(Path(urls["json"].removeprefix("file://")).read_text())
    return {
        "seconds": wall,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "items": assessment.summary["items"],
        "pass_rate": assessment.summary["pass_rate"],
        "gate_passed": assessment.gate_passed,
        "contract_success": assessment.contract.success,
        "contract_failed": [f"{r.expectation}({r.column})" for r in assessment.contract.failed],
        "flagged_total": report["flagged_total"],
        "samples_embedded": sum(s["embedded"] for s in report["samples"]),
        "result_type": type(result).__name__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--items-per-part", type=int, default=500)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--step", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.workdir)))
        return
    work = Path(tempfile.mkdtemp(prefix="assessment-", dir=args.workdir))
    try:
        load_before = os.getloadavg()
        built = build_run(work / "out", args.items, args.items_per_part)
        print(
            f"run: {args.items:,} items in {-(-args.items // args.items_per_part)} parts, "
            f"{built['parquet_mb']:.0f} MB Parquet (written in {built['seconds']:.1f} s)"
        )
        cmd = [sys.executable, "-m", "benchmarks.assessment", "--step", "assess"]
        done = subprocess.run(
            [*cmd, "--workdir", str(work / "out")], capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise SystemExit(f"the assessment step failed:\n{done.stderr[-4000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'items':>10} {'wall s':>8} {'peak RSS MB':>12} {'baseline MB':>12} {'step MB':>8}")
    step_mb = r["peak_rss_mb"] - r["baseline_rss_mb"]
    print(
        f"{r['items']:>10,} {r['seconds']:>8.1f} {r['peak_rss_mb']:>12.0f} "
        f"{r['baseline_rss_mb']:>12.0f} {step_mb:>8.0f}"
    )
    extra = {k: r[k] for k in r if k not in ("items", "seconds", "peak_rss_mb", "baseline_rss_mb")}
    print(f"outcome: {extra}")
    print(
        "load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after: "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )


if __name__ == "__main__":
    main()
