"""Benchmark of the project's own generator models, trained here on espeak-ng speech.

Builds a one-voice espeak corpus, trains each acoustic decoder (deterministic, vae, diffusion) and
the HiFi-GAN vocoder for a fixed wall-clock budget each, then prints, per generator (decoder x
vocoder): training time, CPU real-time factor of batched synthesis, and (when the intelligibility
validator exists) ASR word error rate on held-out texts; plus copy-synthesis quality of HiFi-GAN vs
Griffin-Lim on held-out espeak audio (MCD, LSD, log-mel L1, multi-resolution STFT, STOI).

    .venv/bin/python benchmarks/models.py --minutes 2 --utterances 200 --threads 1
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio_synth_core.generators.base import SynthesisRequest  # noqa: E402
from audio_synth_core.models.features import GriffinLimVocoder, MelConfig, log_mel  # noqa: E402
from audio_synth_core.models.frontend import Frontend  # noqa: E402
from audio_synth_core.models.metrics import copy_synthesis_metrics  # noqa: E402
from audio_synth_core.models.training import (  # noqa: E402
    AcousticHParams,
    VocoderHParams,
    train_acoustic,
    train_vocoder,
)
from audio_synth_core.models.tts import TTSModel  # noqa: E402

_SUBJECTS = [
    "The old man",
    "My sister",
    "A small dog",
    "The teacher",
    "Our neighbour",
    "The pilot",
    "Every student",
    "The baker",
    "A tired child",
    "The river",
    "His brother",
    "The doctor",
]
_VERBS = [
    "found",
    "painted",
    "carried",
    "opened",
    "watched",
    "cleaned",
    "bought",
    "lost",
    "followed",
    "moved",
    "fixed",
    "counted",
]
_OBJECTS = [
    "a red umbrella",
    "the heavy door",
    "seven green apples",
    "the quiet garden",
    "a letter from home",
    "the broken window",
    "two wooden chairs",
    "the morning train",
    "a silver coin",
    "the long bridge",
    "a bag of rice",
    "the yellow kite",
]
_TAILS = [
    "",
    " yesterday",
    " before dinner",
    " in the rain",
    " near the station",
    " after school",
    " on Monday",
    " very slowly",
]


def corpus_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct short English sentences: shipped catalog sentences + seeded templates."""
    texts: list[str] = []
    catalog = ROOT / "datasets" / "catalog-demo.csv"
    if catalog.exists():
        with catalog.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row["language"] != "en":
                    continue
                for sentence in re.split(r"(?<=[.!?])\s+", row["text"]):
                    if 3 <= len(sentence.split()) <= 14 and sentence not in texts:
                        texts.append(sentence)
    rng = random.Random(seed)
    rng.shuffle(texts)
    texts = texts[: n // 3]
    seen = set(texts)
    while len(texts) < n:
        s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
        s += rng.choice(_TAILS) + "."
        if s not in seen:
            seen.add(s)
            texts.append(s)
    return texts


def espeak_corpus(texts: list[str], voice: str) -> list[tuple[str, np.ndarray, int]]:
    from audio_synth_core.generators.espeak import EspeakGenerator

    gen = EspeakGenerator()
    audio = gen.generate([SynthesisRequest(text=t, voice=voice) for t in texts])
    return [
        (t, a, gen.sample_rate_hz)
        for t, a in zip(texts, audio, strict=True)
        if not isinstance(a, Exception)
    ]


def _calibrated_steps(train, budget_s: float, probe_steps: int = 10) -> int:
    """Steps that fit ``budget_s`` at the speed of a short probe run (the LR schedule needs a
    step count up front, so the budget is turned into steps rather than cut off mid-schedule).
    The probe's loop time is used, not its data preparation."""
    probe = train(probe_steps)
    return max(probe_steps, int(budget_s / (probe.train_seconds / probe_steps)))


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _intelligibility(texts: list[str]):
    """The WER validator prepared on the held-out texts, or None where it is not available."""
    try:
        from audio_synth_core.validators.base import ValidationContext
        from audio_synth_core.validators.intelligibility import IntelligibilityValidator
    except ImportError:
        return None
    validator = IntelligibilityValidator()
    validator.prepare(ValidationContext(texts=texts))
    return validator


def _wer(validator, texts: list[str], clips: list[np.ndarray], rate: int) -> float | None:
    if validator is None:
        return None
    from audio_synth_core.validators.base import Clip

    rows = [
        validator.measure(Clip(id=str(i), audio=a, sample_rate_hz=rate, text=t))
        for i, (t, a) in enumerate(zip(texts, clips, strict=True))
    ]
    return _mean(rows, "wer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per model")
    parser.add_argument("--utterances", type=int, default=200, help="training utterances")
    parser.add_argument("--held-out", type=int, default=16, help="evaluation utterances")
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--decoders", default="deterministic,vae,diffusion")
    parser.add_argument("--batch", type=int, default=8, help="synthesis batch size")
    parser.add_argument("--save", default=None, help="directory to save the trained models in")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument(
        "--adversarial-fraction",
        type=float,
        default=0.0,
        help="share of vocoder steps with GAN losses (0: spectral losses only, CPU-friendly)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budget_s = args.minutes * 60
    mel_config = MelConfig()

    t0 = time.perf_counter()
    texts = corpus_texts(args.utterances + args.held_out)
    corpus = espeak_corpus(texts, args.voice)
    train, test = corpus[: args.utterances], corpus[args.utterances :]
    rate = mel_config.sample_rate_hz
    hours = sum(len(a) / r for _, a, r in train) / 3600
    print(
        f"corpus: {len(train)} train / {len(test)} held-out utterances, "
        f"{hours * 60:.1f} min of audio, built in {time.perf_counter() - t0:.1f} s"
    )
    figures: dict = {"args": vars(args), "train_minutes_audio": hours * 60}

    # -- vocoder -----------------------------------------------------------------------------
    def vocoder_run(steps: int, adversarial_start: int | None = None):
        hp = VocoderHParams(
            steps=steps,
            log_every=max(1, steps // 5),
            adversarial_start_step=steps if adversarial_start is None else adversarial_start,
        )
        return train_vocoder(train, hp, torch.Generator().manual_seed(0), device="cpu")

    # GAN steps cost ~10x spectral-only steps on a CPU: price both, then split the budget.
    fraction = args.adversarial_fraction
    spectral = _calibrated_steps(vocoder_run, budget_s)
    if fraction > 0:
        adversarial = _calibrated_steps(lambda n: vocoder_run(n, 0), budget_s)
        steps = int(1 / ((1 - fraction) / spectral + fraction / adversarial))
        adversarial_start = int(steps * (1 - fraction))
    else:
        steps, adversarial_start = spectral, None
    voc = vocoder_run(steps, adversarial_start)
    print(f"vocoder: {voc.step} steps in {voc.train_seconds:.0f} s; final {voc.metrics}")
    figures["vocoder"] = {
        "steps": voc.step,
        "adversarial_start_step": adversarial_start,
        "train_s": voc.train_seconds,
    }

    griffin = GriffinLimVocoder(mel_config)
    copy: dict[str, list[dict]] = {"hifigan": [], "griffinlim": []}
    vocode_s = {"hifigan": 0.0, "griffinlim": 0.0}
    audio_s = 0.0
    for _, audio, _ in test:
        audio = audio[: len(audio) // mel_config.hop_length * mel_config.hop_length]
        audio_s += len(audio) / rate
        mel = log_mel(audio, mel_config).unsqueeze(0)
        for name, vocoder in (("hifigan", voc.model), ("griffinlim", griffin)):
            started = time.perf_counter()
            with torch.no_grad():
                out = vocoder(mel)[0].numpy()
            vocode_s[name] += time.perf_counter() - started
            copy[name].append(copy_synthesis_metrics(audio, out, rate, mel_config))
    print("\ncopy synthesis on held-out espeak audio (lower is better, STOI higher):")
    print(
        f"{'vocoder':<12}{'MCD dB':>8}{'LSD dB':>8}{'logmel L1':>11}{'MR-STFT':>9}"
        f"{'STOI':>7}{'RTF':>8}"
    )
    figures["copy_synthesis"] = {}
    for name, rows in copy.items():
        row = {k: _mean(rows, k) for k in rows[0]}
        row["rtf"] = vocode_s[name] / audio_s
        figures["copy_synthesis"][name] = row
        stoi = f"{row['stoi']:.3f}" if row["stoi"] is not None else "n/a"
        print(
            f"{name:<12}{row['mcd_db']:>8.2f}{row['lsd_db']:>8.2f}{row['log_mel_l1']:>11.3f}"
            f"{row['mrstft']:>9.3f}{stoi:>7}{row['rtf']:>8.4f}"
        )

    # -- acoustic models ----------------------------------------------------------------------
    validator = _intelligibility([t for t, _, _ in test])
    test_texts = [t for t, _, _ in test]
    reference_wer = _wer(validator, test_texts, [a for _, a, _ in test], rate)
    figures["espeak_reference_wer"] = reference_wer
    frontend = Frontend("espeak", args.voice).fit(t for t, _, _ in train)
    results = []
    for decoder in args.decoders.split(","):

        def acoustic_run(steps: int, decoder: str = decoder):
            hp = AcousticHParams(
                decoder=decoder,
                steps=steps,
                log_every=max(1, steps // 5),
                warmup_steps=min(100, max(1, steps // 10)),
            )
            return train_acoustic(
                train,
                hp,
                torch.Generator().manual_seed(0),
                frontend=frontend,
                mel_config=mel_config,
                device="cpu",
            )

        steps = _calibrated_steps(acoustic_run, budget_s)
        ac = acoustic_run(steps)
        print(
            f"\nacoustic {decoder}: {ac.step} steps in {ac.train_seconds:.0f} s; "
            f"final { {k: round(v, 3) for k, v in ac.metrics.items()} }"
        )
        tts = TTSModel(frontend, ac.model, mel_config, voc.model, "hifigan")
        if args.save:
            tts.save(Path(args.save) / decoder)
        for vocoder_kind in ("hifigan", "griffinlim"):
            model = tts.with_vocoder(vocoder_kind)
            clips: list[np.ndarray] = []
            started = time.perf_counter()
            for i in range(0, len(test_texts), args.batch):
                clips += model.synthesize(test_texts[i : i + args.batch], seed=i)
            elapsed = time.perf_counter() - started
            seconds = sum(len(c) for c in clips) / rate
            row = {
                "generator": f"{decoder}+{vocoder_kind}",
                "train_s": ac.train_seconds + voc.train_seconds * (vocoder_kind == "hifigan"),
                "steps": ac.step,
                "rtf": elapsed / seconds,
                "duration_ratio": seconds / sum(len(a) / r for _, a, r in test),
                "wer": _wer(validator, test_texts, clips, rate),
            }
            results.append(row)
    figures["generators"] = results

    print(f"\ngenerators on held-out texts (CPU, {args.threads} thread(s), batch {args.batch}):")
    print(f"{'generator':<26}{'train s':>9}{'steps':>7}{'RTF':>8}{'dur/ref':>9}{'WER':>7}")
    for r in results:
        wer = f"{r['wer']:.3f}" if r["wer"] is not None else "n/a"
        print(
            f"{r['generator']:<26}{r['train_s']:>9.0f}{r['steps']:>7}{r['rtf']:>8.4f}"
            f"{r['duration_ratio']:>9.2f}{wer:>7}"
        )
    if reference_wer is not None:
        print(
            f"{'espeak (reference audio)':<26}{'':>9}{'':>7}{'':>8}{1.0:>9.2f}{reference_wer:>7.3f}"
        )
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
