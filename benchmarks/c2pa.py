"""What a C2PA manifest costs per catalog item, against the espeak synthesis of the same clip.

    .venv/bin/python -m benchmarks.c2pa                 # 4 clips of 3-12 s, 200 repeats each
    .venv/bin/python -m benchmarks.c2pa --items 120     # plus generate_shard with C2PA off / on

CPU milliseconds (``time.process_time``: every thread of the process, c2pa-rs included), median
of ``--repeats`` runs per clip, one process, one BLAS thread. Per clip and format (FLAC sidecar,
WAV embedded) it times three ways of signing the same bytes:

- ``per-file``: a new signer and c2pa-rs' default settings for every file, in memory;
- ``attach``: the same after the file was written, reading it back and writing the result
  (what signing finished files through ``attach_c2pa`` costs without the cached context);
- ``shipped``: what the pipeline does (``generate.signed_item``): one signing context per key and
  process, ``verify_after_sign`` off, the bytes already in memory, nothing re-read.

``--items N`` also generates N catalog items through ``generate_shard`` with and without
manifests, unmarked and marked (the default run watermarks every clip), and reports the CPU per
item of each: what C2PA adds to a whole item, encoding, levels and the file writes included.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

SENTENCES = [
    "Please call me back after lunch on Tuesday.",
    "This kettle boils a full litre of water in two minutes, and it switches off by itself.",
    "Our oak desk ships in fully recycled packaging, folds flat so it fits in a small "
    "cupboard, and is easy to clean with a damp cloth.",
    "The travel mug was tested in our workshop before it left, comes with a generous two year "
    "warranty, keeps coffee hot for six hours, and fits in every cup holder we could find.",
]


def cpu_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median CPU milliseconds of ``fn`` over ``repeats`` calls (after three warm-up calls)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def _row(item_id: str, data: bytes, fmt: str, n: int, rate: int) -> dict[str, Any]:
    return {
        "id": item_id,
        "generator": "espeak",
        "generator_version": "1.52",
        "generator_params": "{}",
        "voice": "en-us",
        "language": "en",
        "seed": 7,
        "watermark_payload": 0x12345678,
        "watermark_scheme": "stdm-v1",
        "sha256": hashlib.sha256(data).hexdigest(),
        "audio_format": fmt,
        "sample_rate_hz": rate,
        "num_samples": n,
        "created_at": "2026-12-02T10:00:00+00:00",
    }


def _per_file(info: tuple, record: dict, fmt: str, data: bytes) -> tuple[bytes, bytes | None]:
    """Signing as if each file were the first: a new signer, c2pa-rs' default settings."""
    import c2pa

    from audio_synth_core.provenance import c2pa as prov

    with c2pa.Signer.from_info(c2pa.C2paSignerInfo(*info)) as signer:
        builder = c2pa.Builder(prov.manifest_definition(record, "x"))
        out = io.BytesIO()
        if fmt in prov.EMBEDDED:
            builder.sign(signer, prov.EMBEDDED[fmt], io.BytesIO(data), out)
            return out.getvalue(), None
        builder.set_no_embed()
        return data, builder.sign(signer, prov.SIDECAR[fmt], io.BytesIO(data), out)


def per_clip(repeats: int) -> list[dict[str, Any]]:
    """Synthesis, encoding and the three signing paths for each sentence and format."""
    from audio_synth_core import audio
    from audio_synth_core.generators.base import SynthesisRequest
    from audio_synth_core.generators.espeak import EspeakGenerator
    from audio_synth_core.pipeline.generate import signed_item
    from audio_synth_core.provenance import c2pa as prov
    from audio_synth_core.provenance.records import item_record, parse_record
    from audio_synth_core.provenance.signing import Signer, new_private_key_pem
    from audio_synth_core.store import layout
    from audio_synth_core.store.storage import Store

    gen = EspeakGenerator()
    rate = gen.sample_rate_hz
    material = prov.material_from_signer(Signer(new_private_key_pem(), "benchmark"))
    info = (material.alg, material.cert_chain_pem, material.private_key_pem, None)
    tmp = tempfile.TemporaryDirectory(prefix="c2pa-bench-")
    store = Store(tmp.name)
    out = []
    for text in SENTENCES:
        request = SynthesisRequest(text, "en-us", "en", 7)
        (samples,) = gen.generate([request])
        synth = cpu_ms(lambda r=request: gen.generate([r]), repeats)
        for fmt in ("flac", "wav"):
            data = audio.encode(samples, rate, fmt)
            row = _row("ab" + "0" * 30, data, fmt, len(samples), rate)
            record = parse_record(item_record(row))
            rel = layout.audio(row["id"], fmt)

            def attach(data=data, record=record, rel=rel, fmt=fmt) -> None:
                store.write_bytes(rel, data)
                stored, sidecar = _per_file(info, record, fmt, store.read_bytes(rel))
                store.write_bytes(
                    *((layout.c2pa_sidecar(rel), sidecar) if sidecar else (rel, stored))
                )

            out.append(
                {
                    "audio_s": len(samples) / rate,
                    "format": fmt,
                    "bytes": len(data),
                    "synth_ms": synth,
                    "encode_ms": cpu_ms(lambda d=samples, f=fmt: audio.encode(d, rate, f), repeats),
                    "per_file_ms": cpu_ms(
                        lambda r=record, f=fmt, d=data: _per_file(info, r, f, d), repeats
                    ),
                    "attach_ms": cpu_ms(attach, repeats),
                    "shipped_ms": cpu_ms(
                        lambda r=row, d=data: signed_item(r, d, material), repeats
                    ),
                }
            )
    tmp.cleanup()
    return out


def in_pipeline(n_items: int, rounds: int = 3) -> dict[str, float]:
    """CPU ms per item of ``generate_shard`` (FLAC and WAV, unmarked and marked) without and
    with manifests: the median of ``rounds`` interleaved rounds (other load on the machine hits
    with and without alike)."""
    import pyarrow as pa

    from audio_synth_core.generators.espeak import EspeakGenerator
    from audio_synth_core.pipeline.generate import generate_shard
    from audio_synth_core.pipeline.runs import ShardSpec
    from audio_synth_core.provenance.c2pa import material_from_signer
    from audio_synth_core.provenance.signing import Signer, new_private_key_pem
    from audio_synth_core.store import layout, schema
    from audio_synth_core.store.storage import Store
    from audio_synth_core.watermark import WatermarkKey, WatermarkSettings

    gen = EspeakGenerator()
    material = material_from_signer(Signer(new_private_key_pem(), "benchmark"))
    marks = {"unmarked": None, "marked": WatermarkSettings(WatermarkKey(bytes(range(32))))}
    results: dict[str, list[float]] = {}
    configs = itertools.product(range(rounds), ("flac", "wav"), marks, ("off", "on"))
    for n, fmt, mark, label in configs:
        tmp = tempfile.TemporaryDirectory(prefix="c2pa-shard-")
        store = Store(tmp.name)
        run_id = f"bench-{fmt}-{mark}-{label}-{n}"
        rows = [
            {
                "id": hashlib.sha256(f"{run_id}{i}".encode()).hexdigest()[:32],
                "catalog_id": f"r{i}",
                "chunk_index": 0,
                "text": f"{SENTENCES[i % len(SENTENCES)]} Item {i}.",
                "voice": "en-us",
                "language": "en",
                "generator": gen.name,
                "generator_version": gen.version,
                "generator_params": "{}",
                "seed": i,
                "audio_format": fmt,
                "status": schema.STATUS_PENDING,
            }
            for i in range(n_items)
        ]
        spec = ShardSpec(run_id, 0, n_items)
        table = pa.Table.from_pylist(rows, schema=schema.ITEM_SCHEMA)
        store.write_table(layout.plan_part(run_id, spec.name), table)
        start = time.process_time()
        generate_shard(spec, store, gen, 32, marks[mark], material if label == "on" else None)
        per_item = (time.process_time() - start) / n_items * 1000
        tmp.cleanup()
        results.setdefault(f"{fmt}_{mark}_{label}_ms", []).append(per_item)
    return {k: statistics.median(v) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--items", type=int, default=0, help="also time generate_shard")
    args = parser.parse_args()
    print("audio_s fmt   bytes   synth  encode  per-file  attach  shipped  shipped/synth")
    for r in per_clip(args.repeats):
        print(
            f"{r['audio_s']:6.1f}  {r['format']:4} {r['bytes']:7d} {r['synth_ms']:6.2f} "
            f"{r['encode_ms']:6.2f} {r['per_file_ms']:8.2f} {r['attach_ms']:7.2f} "
            f"{r['shipped_ms']:7.2f}  {100 * r['shipped_ms'] / r['synth_ms']:5.1f} %"
        )
    if args.items:
        res = in_pipeline(args.items)
        for fmt, mark in itertools.product(("flac", "wav"), ("unmarked", "marked")):
            off, on = res[f"{fmt}_{mark}_off_ms"], res[f"{fmt}_{mark}_on_ms"]
            print(
                f"generate_shard {fmt} {mark}, {args.items} items: {off:.2f} ms/item without, "
                f"{on:.2f} with C2PA (+{on - off:.2f} ms, +{100 * (on - off) / off:.1f} %)"
            )


if __name__ == "__main__":
    main()
