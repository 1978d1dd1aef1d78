"""Anonymization benchmark: attacker EERs, WER cost and speed per method, plus embedding throughput.

Speakers: flite voices made from recorded people (awb, kal, rms, slt; needs ``apt-get install
flite``) and four distinct espeak-ng variants; 10 Harvard sentences each (public domain), the first
3 of each speaker enroll it. Run from the repository root:

    .venv/bin/python -m benchmarks.anonymization [--utterances 10] [--no-wer]

Takes ~3-4 minutes on one busy core. Numbers are printed, not asserted: the tests assert the
properties, this reports their size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from audio_synth_core.generators.base import SynthesisRequest
from audio_synth_core.generators.espeak import EspeakGenerator
from audio_synth_core.privacy import attack as privacy_eval
from audio_synth_core.privacy import speaker
from audio_synth_core.transforms import anonymize

HARVARD = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
)
# espeak variants that resemblyzer tells apart (en-us, +m1, +m3 and "en" score 0.8-0.9 against
# each other: effectively one voice, which would make the speaker set look easier than it is).
ESPEAK_VOICES = ("en-us", "en-us+f3", "en-us+m7", "en-us+klatt")

METHODS: dict[str, str | dict] = {
    "none": {"method": "none"},
    "mcadams 0.8 (low)": "low",
    "mcadams U(0.5,0.9) (medium)": "medium",
    "shift+mcadams (high)": "high",
    "shift U(1.2,1.4)+mcadams": {
        "method": "shift_mcadams",
        "shift_min": 1.2,
        "shift_max": 1.4,
        "alpha_min": 0.5,
        "alpha_max": 0.9,
    },
}


def corpus(n_utterances: int) -> list[privacy_eval.Utterance]:
    texts = HARVARD[:n_utterances]
    utts = [
        privacy_eval.Utterance(voice, *privacy_eval.flite_speech(text, voice), text)
        for voice in privacy_eval.FLITE_VOICES
        for text in texts
    ]
    gen = EspeakGenerator()
    for voice in ESPEAK_VOICES:
        audios = gen.generate([SynthesisRequest(text=t, voice=voice) for t in texts])
        for text, audio in zip(texts, audios, strict=True):
            if isinstance(audio, Exception):
                raise audio
            utts.append(privacy_eval.Utterance(voice, audio, gen.sample_rate_hz, text))
    return utts


def embedding_throughput(utts: list[privacy_eval.Utterance]) -> float:
    """Audio seconds embedded per wall second on one torch thread (warm encoder)."""
    audios = [u.audio for u in utts]
    rates = [u.sample_rate_hz for u in utts]
    speaker.embed_many(audios[:2], rates[:2])  # load the model, warm librosa
    started = time.perf_counter()
    speaker.embed_many(audios, rates)
    elapsed = time.perf_counter() - started
    return sum(len(a) / r for a, r in zip(audios, rates, strict=True)) / elapsed


def anonymization_speed(utts: list[privacy_eval.Utterance]) -> dict[str, float]:
    """Audio seconds per wall second for each level (one core)."""
    audio_s = sum(len(u.audio) / u.sample_rate_hz for u in utts)
    speeds = {}
    for level in anonymize.PRIVACY_LEVELS:
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        for u in utts:
            anonymize.anonymize(u.audio, u.sample_rate_hz, level, rng)
        speeds[level] = audio_s / (time.perf_counter() - started)
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=10, help="per speaker (4-12)")
    parser.add_argument("--no-wer", action="store_true", help="skip the pocketsphinx WER columns")
    args = parser.parse_args()
    if not privacy_eval.flite_available():
        raise SystemExit("flite is not installed: apt-get install flite")
    speaker.configure_threads(1)  # per-core numbers
    utts = corpus(min(max(args.utterances, 4), len(HARVARD)))
    audio_s = sum(len(u.audio) / u.sample_rate_hz for u in utts)
    print(
        f"{len({u.speaker for u in utts})} speakers, {len(utts)} utterances, {audio_s:.0f} s audio"
    )
    print(f"embedding throughput: {embedding_throughput(utts):.0f} audio-s per wall-s per core")
    for level, speed in anonymization_speed(utts).items():
        print(f"anonymization {level}: {speed:.0f} audio-s per wall-s per core")
    wer_fn = None if args.no_wer else privacy_eval.pocketsphinx_wer(HARVARD)
    table = privacy_eval.evaluate(utts, METHODS, n_enroll=3, seed=0, wer_fn=wer_fn)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3))


if __name__ == "__main__":
    main()
