"""Benchmark of the ONNX export: torch vs ONNX (fp32) vs int8 ONNX, per acoustic decoder.

Trains a model of the chosen size preset (``tiny``, the default of ``AcousticConfig`` and
``VocoderConfig``) for only a few steps on espeak-ng speech: speed and size do not depend on how
well a model is trained, and a few steps give it realistic durations (so clip lengths, and with them
the real-time factors, are speech-like). Then, per decoder: export, int8 quantization, parity on
held-out texts (``export.parity``: same noise on both sides), and batched synthesis speed of
``TTSModel.synthesize`` against the ``onnx`` generator (frontend included on both sides).

    .venv/bin/python -m benchmarks.export --steps 20 --threads 1 --batch 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from audio_synth_core.generators.base import SynthesisRequest
from audio_synth_core.generators.onnx import OnnxGenerator
from audio_synth_core.models.features import MelConfig
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.onnx_export import export_onnx
from audio_synth_core.models.parity import parity
from audio_synth_core.models.quantization import quantize_int8
from audio_synth_core.models.training.acoustic import AcousticHParams, train_acoustic
from audio_synth_core.models.training.vocoder import VocoderHParams, train_vocoder
from audio_synth_core.models.tts import TTSModel
from benchmarks.models import corpus_texts, espeak_corpus

VARIANTS = ("torch", "onnx", "int8", "int8-mm")
MATMUL_ONLY = ("MatMul", "Gemm", "Gather")


def _timed_rtf(synthesize, texts: list[str], batch: int, rate: int, repeats: int) -> float:
    """Best-of-``repeats`` real-time factor of synthesizing ``texts`` in batches (after a warm-up
    batch: the first call allocates)."""
    synthesize(texts[:batch], 0)
    best = float("inf")
    for _ in range(repeats):
        samples = 0
        started = time.perf_counter()
        for i in range(0, len(texts), batch):
            samples += sum(len(a) for a in synthesize(texts[i : i + batch], i))
        best = min(best, (time.perf_counter() - started) / (samples / rate))
    return best


def _generator_synthesize(folder: Path, batch: int, threads: int):
    gen = OnnxGenerator(model_url=str(folder), batch_size=batch, threads=threads)

    def run(texts: list[str], seed: int):
        out = gen.generate(
            [SynthesisRequest(t, "default", seed=seed + i) for i, t in enumerate(texts)]
        )
        for a in out:
            if isinstance(a, Exception):
                raise a
        return out

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="tiny", help="size preset of both models")
    parser.add_argument("--steps", type=int, default=20, help="training steps per model")
    parser.add_argument("--utterances", type=int, default=24, help="training utterances")
    parser.add_argument("--texts", type=int, default=16, help="held-out texts to synthesize")
    parser.add_argument("--decoders", default="deterministic,vae,diffusion")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mel_config = MelConfig()
    rate = mel_config.sample_rate_hz

    t0 = time.perf_counter()
    texts = corpus_texts(args.utterances + args.texts)
    corpus = espeak_corpus(texts, args.voice)
    train, held_out = corpus[: args.utterances], [t for t, _, _ in corpus[args.utterances :]]
    voc = train_vocoder(
        train,
        VocoderHParams(
            size=args.size,
            steps=args.steps,
            log_every=args.steps,
            adversarial_start_step=args.steps,
        ),
        torch.Generator().manual_seed(0),
        mel_config=mel_config,
        device="cpu",
    )
    frontend = Frontend("espeak", args.voice).fit(t for t, _, _ in train)
    print(
        f"corpus + vocoder ({args.steps} steps, size {args.size}): {time.perf_counter() - t0:.0f} s"
    )

    rows = []
    figures: dict = {"args": vars(args), "decoders": {}}
    with tempfile.TemporaryDirectory(prefix="audio-synth-export-bench-") as tmp:
        for decoder in args.decoders.split(","):
            ac = train_acoustic(
                train,
                AcousticHParams(
                    decoder=decoder,
                    size=args.size,
                    steps=args.steps,
                    log_every=args.steps,
                    warmup_steps=max(1, args.steps // 10),
                ),
                torch.Generator().manual_seed(0),
                frontend=frontend,
                mel_config=mel_config,
                device="cpu",
            )
            tts = TTSModel(frontend, ac.model, mel_config, voc.model, "hifigan")
            folder, int8 = Path(tmp) / decoder, Path(tmp) / f"{decoder}-int8"
            started = time.perf_counter()
            export_onnx(tts, folder)
            export_s = time.perf_counter() - started
            quantize_int8(folder, int8)
            # Convolutions kept in float: onnxruntime's ConvInteger is slow on CPU.
            int8_mm = Path(tmp) / f"{decoder}-int8-matmul"
            quantize_int8(folder, int8_mm, op_types=MATMUL_ONLY)
            report = parity(tts, folder, held_out[: args.batch], seed=0, int8_dir=int8)
            report["int8-mm"] = parity(tts, folder, held_out[: args.batch], 0, int8_mm)["int8"]
            report["export_s"] = export_s
            rtf = {
                "torch": _timed_rtf(tts.synthesize, held_out, args.batch, rate, args.repeats),
                "onnx": _timed_rtf(
                    _generator_synthesize(folder, args.batch, args.threads),
                    held_out,
                    args.batch,
                    rate,
                    args.repeats,
                ),
                "int8": _timed_rtf(
                    _generator_synthesize(int8, args.batch, args.threads),
                    held_out,
                    args.batch,
                    rate,
                    args.repeats,
                ),
            }
            rtf["int8-mm"] = _timed_rtf(
                _generator_synthesize(int8_mm, args.batch, args.threads),
                held_out,
                args.batch,
                rate,
                args.repeats,
            )
            report["rtf"] = rtf
            figures["decoders"][decoder] = report
            for variant in VARIANTS:
                r = report[variant]
                rows.append(
                    {
                        "decoder": decoder,
                        "variant": variant,
                        "size_mb": r["size_mb"],
                        "rtf": rtf[variant],
                        "mel_max": r["mel"]["max_abs_diff"] if variant != "torch" else None,
                        "wave_max": r["wave"]["max_abs_diff"] if variant != "torch" else None,
                        "wave_rel": r["wave"]["rel_l2"] if variant != "torch" else None,
                        "mcd": r["copy_synthesis"]["mcd_db"] if variant != "torch" else None,
                        "frames": r["frames_max_delta"] if variant != "torch" else None,
                    }
                )

    def fmt(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(
        f"\nCPU, {args.threads} thread(s), batch {args.batch}, {len(held_out)} held-out texts; "
        f"parity on the first {args.batch} (same noise both sides), reference = torch"
    )
    print(
        f"{'decoder':<14}{'variant':<9}{'size MB':>9}{'RTF':>9}{'speed-up':>9}"
        f"{'mel max|d|':>12}{'wav max|d|':>12}{'wav relL2':>11}{'MCD dB':>8}{'max|dT|':>8}"
    )
    for row in rows:
        base = next(r for r in rows if r["decoder"] == row["decoder"] and r["variant"] == "torch")
        print(
            f"{row['decoder']:<14}{row['variant']:<9}{row['size_mb']:>9.2f}{row['rtf']:>9.4f}"
            f"{base['rtf'] / row['rtf']:>8.2f}x{fmt(row['mel_max'], '.1e'):>12}"
            f"{fmt(row['wave_max'], '.1e'):>12}{fmt(row['wave_rel'], '.1e'):>11}"
            f"{fmt(row['mcd'], '.3f'):>8}{fmt(row['frames'], 'd'):>8}"
        )
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
