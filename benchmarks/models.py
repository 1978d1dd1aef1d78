"""Benchmark of the project's own generator models, trained here on espeak-ng speech.

Builds a one-voice espeak corpus, trains the HiFi-GAN-style vocoder (spectral losses, then the GAN
losses as well for the last ``--adversarial-fraction`` of its steps) and each acoustic decoder
(deterministic, vae, diffusion) for a fixed wall-clock budget each, then prints:

- copy synthesis of held-out espeak audio, HiFi-GAN vs the Griffin-Lim baseline: MCD, LSD, log-mel
  L1, multi-resolution STFT distance, STOI, plus WER and DNSMOS of the vocoded audio;
- per generator (decoder x vocoder) on held-out texts: training time, CPU real-time factor of
  batched synthesis, duration ratio to espeak, WER and DNSMOS OVRL, next to the espeak reference.

WER comes from the intelligibility validator (pocketsphinx, an LM of the held-out texts) and DNSMOS
from the dnsmos validator, the same ones a run uses.

    .venv/bin/python -m benchmarks.models --vocoder-minutes 25 --minutes 2 --held-out 16
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import time
from pathlib import Path

import numpy as np
import torch

from audio_synth_core.generators.base import SynthesisRequest
from audio_synth_core.models.features import GriffinLimVocoder, MelConfig, log_mel
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.metrics import copy_synthesis_metrics
from audio_synth_core.models.training.acoustic import AcousticHParams, train_acoustic
from audio_synth_core.models.training.vocoder import VocoderHParams, train_vocoder
from audio_synth_core.models.tts import TTSModel

ROOT = Path(__file__).resolve().parents[1]

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


class _Scores:
    """WER (intelligibility validator, LM of the held-out texts) and DNSMOS OVRL of clips, through
    the same validators a run uses; a validator whose dependencies are missing is left out."""

    def __init__(self, texts: list[str]) -> None:
        from audio_synth_core.errors import PluginError
        from audio_synth_core.validators.base import ValidationContext, build_validator

        self.validators = {}
        for name, metric in (("intelligibility", "wer"), ("dnsmos", "mos_ovrl")):
            try:
                # DNSMOS hop 9.01 s: one window per short clip, 2.5x faster, within 0.02 MOS.
                validator = build_validator(name, {"hop_s": 9.01} if name == "dnsmos" else {})
                validator.prepare(ValidationContext(texts=texts))
            except (ImportError, PluginError) as exc:
                print(f"({name} unavailable: {exc})")
                continue
            self.validators[metric] = validator

    def __call__(self, texts: list[str], clips: list[np.ndarray], rate: int) -> dict:
        from audio_synth_core.validators.base import Clip

        out: dict[str, float | None] = {"wer": None, "mos_ovrl": None}
        for metric, validator in self.validators.items():
            rows = [
                validator.measure(Clip(id=str(i), audio=a, sample_rate_hz=rate, text=t))
                for i, (t, a) in enumerate(zip(texts, clips, strict=True))
            ]
            out[metric] = _mean(rows, metric)
        return out


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


# Copy-synthesis distances and which way is better.
_COPY_METRICS = (
    ("mcd_db", "MCD dB", "lower"),
    ("lsd_db", "LSD dB", "lower"),
    ("log_mel_l1", "logmel L1", "lower"),
    ("mrstft", "MR-STFT", "lower"),
    ("stoi", "STOI", "higher"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="budget per acoustic model")
    parser.add_argument("--vocoder-minutes", type=float, default=25.0, help="vocoder budget")
    parser.add_argument(
        "--vocoder-steps", type=int, default=None, help="fixed vocoder steps (no time budget)"
    )
    parser.add_argument("--utterances", type=int, default=200, help="training utterances")
    parser.add_argument("--held-out", type=int, default=16, help="evaluation utterances")
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decoders", default="deterministic,vae,diffusion")
    parser.add_argument("--batch", type=int, default=8, help="synthesis batch size")
    parser.add_argument("--save", default=None, help="directory to save the trained models in")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument(
        "--adversarial-fraction",
        type=float,
        # 0 on a CPU: 535 GAN steps (1.5 s each here) after 4812 spectral ones made copy synthesis
        # worse (log-mel L1 0.142 -> 0.185 in training, STOI 0.905); GAN training wants a GPU.
        default=0.0,
        help="share of the vocoder's steps that add the GAN losses (the last ones)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
    test_texts = [t for t, _, _ in test]
    scores = _Scores(test_texts)
    reference = scores(test_texts, [a for _, a, _ in test], rate)
    figures["espeak_reference"] = reference

    # -- vocoder -----------------------------------------------------------------------------
    def vocoder_run(steps: int, adversarial_start: int | None = None):
        hp = VocoderHParams(
            steps=steps,
            log_every=max(1, steps // 10),
            adversarial_start_step=steps if adversarial_start is None else adversarial_start,
        )
        return train_vocoder(
            train,
            hp,
            torch.Generator().manual_seed(0),
            device="cpu",
            on_log=lambda step, m: print(
                f"  vocoder step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()),
                flush=True,
            ),
        )

    # GAN steps cost several times a spectral-only step on a CPU: price both, split the budget.
    vocoder_budget_s = args.vocoder_minutes * 60
    fraction = args.adversarial_fraction
    if args.vocoder_steps:
        # A fixed count: the probe's speed estimate varies by 1.5x between runs on a shared CPU.
        steps = args.vocoder_steps
        adversarial_start = int(steps * (1 - fraction)) if fraction > 0 else None
    elif fraction > 0:
        spectral = _calibrated_steps(vocoder_run, vocoder_budget_s)
        adversarial = _calibrated_steps(lambda n: vocoder_run(n, 0), vocoder_budget_s)
        steps = int(1 / ((1 - fraction) / spectral + fraction / adversarial))
        adversarial_start = int(steps * (1 - fraction))
    else:
        steps, adversarial_start = _calibrated_steps(vocoder_run, vocoder_budget_s), None
    print(f"vocoder: {steps} steps, GAN losses from step {adversarial_start or steps}")
    voc = vocoder_run(steps, adversarial_start)
    print(f"vocoder: {voc.step} steps in {voc.train_seconds:.0f} s")
    figures["vocoder"] = {
        "steps": voc.step,
        "adversarial_start_step": adversarial_start,
        "train_s": voc.train_seconds,
    }

    griffin = GriffinLimVocoder(mel_config)
    copy: dict[str, list[dict]] = {"hifigan": [], "griffinlim": []}
    copy_clips: dict[str, list[np.ndarray]] = {"hifigan": [], "griffinlim": []}
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
            copy_clips[name].append(out)
    print("\ncopy synthesis of held-out espeak audio (STOI and DNSMOS higher is better):")
    header = "".join(f"{label:>10}" for _, label, _ in _COPY_METRICS)
    print(f"{'vocoder':<12}{header}{'WER':>7}{'DNSMOS':>8}{'RTF':>8}")
    figures["copy_synthesis"] = {}
    for name, rows in copy.items():
        row = {key: _mean(rows, key) for key, _, _ in _COPY_METRICS}
        row.update(scores(test_texts, copy_clips[name], rate))
        row["rtf"] = vocode_s[name] / audio_s
        figures["copy_synthesis"][name] = row
        cells = "".join(f"{_fmt(row[key]):>10}" for key, _, _ in _COPY_METRICS)
        print(
            f"{name:<12}{cells}{_fmt(row['wer']):>7}{_fmt(row['mos_ovrl'], '.2f'):>8}"
            f"{row['rtf']:>8.4f}"
        )
    print(
        f"{'espeak':<12}{'(reference)':>{10 * len(_COPY_METRICS)}}{_fmt(reference['wer']):>7}"
        f"{_fmt(reference['mos_ovrl'], '.2f'):>8}"
    )
    gan, baseline = figures["copy_synthesis"]["hifigan"], figures["copy_synthesis"]["griffinlim"]
    wins = [
        key
        for key, _, better in _COPY_METRICS
        if gan[key] is not None
        and baseline[key] is not None
        and (gan[key] < baseline[key] if better == "lower" else gan[key] > baseline[key])
    ]
    figures["hifigan_beats_griffinlim_on"] = wins
    print(f"hifigan beats griffinlim on {len(wins)}/{len(_COPY_METRICS)}: {', '.join(wins)}")

    # -- acoustic models ----------------------------------------------------------------------
    budget_s = args.minutes * 60
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
                **scores(test_texts, clips, rate),
            }
            results.append(row)
    figures["generators"] = results

    print(f"\ngenerators on held-out texts (CPU, {args.threads} thread(s), batch {args.batch}):")
    print(
        f"{'generator':<26}{'train s':>9}{'steps':>7}{'RTF':>8}{'dur/ref':>9}{'WER':>7}"
        f"{'DNSMOS':>8}"
    )
    for r in results:
        print(
            f"{r['generator']:<26}{r['train_s']:>9.0f}{r['steps']:>7}{r['rtf']:>8.4f}"
            f"{r['duration_ratio']:>9.2f}{_fmt(r['wer']):>7}{_fmt(r['mos_ovrl'], '.2f'):>8}"
        )
    print(
        f"{'espeak (reference audio)':<26}{'':>9}{'':>7}{'':>8}{1.0:>9.2f}"
        f"{_fmt(reference['wer']):>7}{_fmt(reference['mos_ovrl'], '.2f'):>8}"
    )
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
