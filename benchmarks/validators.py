"""Throughput of each validator on espeak speech, and how its metric moves with white-noise SNR.

Synthesizes N espeak clips (several voices), then, in this one process (= one core, torch and
onnxruntime pinned to one thread):
- per validator: prepare time, and audio-seconds measured per wall-second (measure + check), per
  clip (``measure``) and batched (``measure_many`` over all clips, as a shard does);
- DNSMOS's default against its reference windows (``windows="reference"``, speechmos exactly):
  speed ratio and the max / mean absolute difference of each score on these clips;
- with --sweep: mean metrics of the clips at clean / 30 / 20 / 10 / 0 dB SNR (WADA-SNR estimate,
  DNSMOS, WER) and the failure rate of each validator's checks.

    .venv/bin/python -m benchmarks.validators --clips 20 --sweep
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from audio_synth_core.validators.base import Clip, ValidationContext
from audio_synth_core.validators.delivery import DeliveryValidator, conform
from audio_synth_core.validators.dnsmos import DnsmosValidator
from audio_synth_core.validators.intelligibility import IntelligibilityValidator
from audio_synth_core.validators.privacy import PrivacyValidator
from audio_synth_core.validators.quality import QualityValidator
from tests import factories as f

MORE_TEXTS = [
    "The train to the city leaves from platform four at noon.",
    "He forgot his umbrella in the back of the taxi.",
    "Fresh bread is baked here every morning before dawn.",
    "The children built a small castle out of wet sand.",
    "Turn left at the second traffic light and park behind the bank.",
    "My grandmother keeps her letters in a wooden box.",
    "The meeting was moved to Thursday afternoon.",
    "A cold wind blew across the empty harbour.",
    "This jacket comes in blue, green and dark grey.",
    "The doctor asked him to rest for a few days.",
    "We watched the sun go down behind the hills.",
    "Add two spoons of sugar and stir the mixture slowly.",
]
VOICES = ["en-us", "en-us+f3", "en-gb", "en-us+m7"]
SNRS = [None, 30, 20, 10, 0]


def make_clips(n: int) -> tuple[list[Clip], list[str]]:
    texts = [*f.SENTENCES, *MORE_TEXTS]
    clips = []
    for i in range(n):
        text, voice = texts[i % len(texts)], VOICES[i % len(VOICES)]
        audio, rate = f.speech(text, voice)
        clips.append(Clip(f"c{i}", audio, rate, text=text, attributes={"voice": voice}))
    return clips, texts


def throughput(validator, clips: list[Clip], texts: list[str]) -> tuple[float, float, float]:
    """(prepare seconds, audio-s per wall-s per clip, same batched) of one validator."""
    started = time.perf_counter()
    validator.prepare(ValidationContext(texts=texts))
    prepared = time.perf_counter()
    for clip in clips:
        validator.check(validator.measure(clip))
    single = time.perf_counter()
    for metrics in validator.measure_many(clips):
        validator.check(metrics)
    batched = time.perf_counter()
    audio_s = sum(c.audio.size / c.sample_rate_hz for c in clips)
    return prepared - started, audio_s / (single - prepared), audio_s / (batched - single)


def reference_speakers(root: Path) -> str:
    """refs/<voice>/<n>.flac: protected espeak voices none of the benchmark clips uses."""
    import soundfile as sf

    for voice in ("en-us+m3", "en-us+f5"):
        (root / voice).mkdir(parents=True)
        for i, text in enumerate(MORE_TEXTS[:3]):
            audio, rate = f.speech(text, voice)
            sf.write(root / voice / f"{i}.flac", audio, rate)
    return str(root)


def dnsmos_agreement(clips: list[Clip]) -> None:
    """DNSMOS default vs the reference windows: speed and score differences on these clips."""
    rows = {}
    for windows in ("reference", "distinct"):
        v = DnsmosValidator(windows=windows)
        v.prepare(ValidationContext())
        started = time.perf_counter()
        rows[windows] = [v.measure(c) for c in clips]
        rows[windows + "_s"] = time.perf_counter() - started
    print(
        f"\nDNSMOS default vs windows='reference': {rows['reference_s'] / rows['distinct_s']:.2f}x"
        " faster; |difference| max / mean:"
    )
    for key in ("mos_ovrl", "mos_sig", "mos_bak", "mos_p808"):
        d = np.abs(
            [a[key] - b[key] for a, b in zip(rows["reference"], rows["distinct"], strict=True)]
        )
        print(f"  {key:9s} {d.max():.3f} / {d.mean():.3f}")


def noisy(clips: list[Clip], snr: float | None) -> list[Clip]:
    if snr is None:
        return clips
    return [
        Clip(c.id, f.add_noise(c.audio, snr, seed=i), c.sample_rate_hz, c.text, c.attributes)
        for i, c in enumerate(clips)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--sweep", action="store_true", help="metrics at clean/30/20/10/0 dB SNR")
    args = parser.parse_args()

    clips, texts = make_clips(args.clips)
    audio_s = sum(c.audio.size / c.sample_rate_hz for c in clips)
    print(f"{len(clips)} espeak clips, {audio_s:.1f} s of audio, LM texts: {len(texts)}")

    acx = [Clip(c.id, *conform(c.audio, c.sample_rate_hz), c.text) for c in clips]
    started = time.perf_counter()
    for c in clips:
        conform(c.audio, c.sample_rate_hz)
    conform_rate = audio_s / (time.perf_counter() - started)

    refs = reference_speakers(Path(tempfile.mkdtemp(prefix="bench-refs-")))
    validators = {
        "quality": (QualityValidator(), clips),
        "dnsmos": (DnsmosValidator(), clips),
        "dnsmos (p835 only)": (DnsmosValidator(models=["p835"]), clips),
        "dnsmos (p808 only)": (DnsmosValidator(models=["p808"]), clips),
        "intelligibility": (IntelligibilityValidator(), clips),
        "privacy (speaker embedding)": (
            PrivacyValidator(reference_url=refs, torch_threads=1),
            clips,
        ),
        "delivery (conformed clips)": (DeliveryValidator(), acx),
    }
    print(f"\n{'validator':28s} {'prepare_s':>9s} {'audio_s/wall_s/core':>20s} {'batched':>8s}")
    for name, (validator, items) in validators.items():
        prep, rate, batched = throughput(validator, items, texts)
        print(f"{name:28s} {prep:9.2f} {rate:20.1f} {batched:8.1f}")
    print(f"{'conform() to ACX':28s} {'':9s} {conform_rate:20.1f}")
    dnsmos_agreement(clips)

    if not args.sweep:
        return
    quality, mos, asr, delivery = (
        validators[k][0]
        for k in ("quality", "dnsmos", "intelligibility", "delivery (conformed clips)")
    )
    print(
        f"\n{'snr_db':>6s} {'wada_snr_db':>11s} {'mos_ovrl':>8s} {'mos_sig':>7s} {'mos_bak':>7s}"
        f" {'mos_p808':>8s} {'wer':>6s} {'cer':>6s}  failed: quality dnsmos intelligibility"
    )
    for snr in SNRS:
        items = noisy(clips, snr)
        q = [quality.measure(c) for c in items]
        m = [mos.measure(c) for c in items]
        w = [asr.measure(c) for c in items]

        def avg(rows, key):
            return float(np.mean([r[key] for r in rows]))

        def fail_rate(v, rows):
            return float(np.mean([bool(v.check(r)) for r in rows]))

        print(
            f"{'clean' if snr is None else snr:>6} {avg(q, 'snr_db'):11.1f}"
            f" {avg(m, 'mos_ovrl'):8.2f} {avg(m, 'mos_sig'):7.2f} {avg(m, 'mos_bak'):7.2f}"
            f" {avg(m, 'mos_p808'):8.2f} {avg(w, 'wer'):6.3f} {avg(w, 'cer'):6.3f}"
            f"  {fail_rate(quality, q):15.2f} {fail_rate(mos, m):6.2f}"
            f" {fail_rate(asr, w):15.2f}"
        )
    acx_fail = np.mean([bool(delivery.check(delivery.measure(c))) for c in acx])
    print(f"\nACX failure rate of conformed clips: {acx_fail:.2f}")


if __name__ == "__main__":
    main()
