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
from dataclasses import replace
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

_SUBJECTS = ["The old man", "My sister", "A small dog", "The teacher", "Our neighbour", "The pilot",
             "Every student", "The baker", "A tired child", "The river", "His brother", "The doctor"]
_VERBS = ["found", "painted", "carried", "opened", "watched", "cleaned", "bought", "lost",
          "followed", "moved", "fixed", "counted"]
_OBJECTS = ["a red umbrella", "the heavy door", "seven green apples", "the quiet garden",
            "a letter from home", "the broken window", "two wooden chairs", "the morning train",
            "a silver coin", "the long bridge", "a bag of rice", "the yellow kite"]
_TAILS = ["", " yesterday", " before dinner", " in the rain", " near the station",
          " after school", " on Monday", " very slowly"]


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
    return [(t, a, gen.sample_rate_hz) for t, a in zip(texts, audio, strict=True)
            if not isinstance(a, Exception)]
