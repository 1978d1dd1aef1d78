"""Attacker evaluation of anonymization, in the manner of the VoicePrivacy Challenge.

An attacker holds a speaker verifier (here resemblyzer's d-vectors, cosine scoring) and enrollment
audio of each speaker. Per speaker, the first ``n_enroll`` utterances are averaged into an
enrollment embedding; every other utterance of every speaker is a trial against every enrolled
speaker (target when the speakers match). The equal error rate (EER) of those scores is reported
for three attacker models:

- ``eer_orig``: original enrollment vs original trials (how identifiable the voices are at all);
- ``eer_ignorant``: original enrollment vs anonymized trials (attacker unaware of anonymization);
- ``eer_lazy_informed``: enrollment anonymized with the same method (own random draws) vs
  anonymized trials (attacker knows the method, not the per-utterance parameters).

Higher EER = better privacy (50% is chance). Next to it: the intelligibility cost as word error
rate before/after (a ``WerFn`` callable; ``pocketsphinx_wer`` wraps the project's
IntelligibilityValidator) and the anonymization real-time factor in this process.

Speakers for the evaluation: ``flite_speech`` renders flite voices derived from recorded people
(CMU ARCTIC awb, rms, slt; kal) when the Debian package ``flite`` is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from audio_synth_core.errors import AudioSynthError
from audio_synth_core.privacy import speaker
from audio_synth_core.transforms import anonymize

# (audio, sample rate, reference text) -> word error rate, None when undefined.
WerFn = Callable[[np.ndarray, int, str], float | None]

# flite voices built from recordings of real speakers (kal: diphones, 8 kHz; the others: CMU
# ARCTIC unit selection, 16 kHz). kal16 is the same speaker as kal.
FLITE_VOICES = ("awb", "kal", "rms", "slt")


class FliteUnavailableError(AudioSynthError):
    """The flite command is not installed (Debian/Ubuntu: ``apt-get install flite``)."""


def flite_available() -> bool:
    return shutil.which("flite") is not None


def flite_speech(text: str, voice: str = "slt") -> tuple[np.ndarray, int]:
    """flite speech (float32 mono) and its sample rate; deterministic for a text and voice."""
    exe = shutil.which("flite")
    if exe is None:
        raise FliteUnavailableError("flite is not installed (apt-get install flite)")
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/out.wav"
        # An argument list, never a shell: the text is data.
        subprocess.run([exe, "-voice", voice, "-t", text, "-o", path], check=True, timeout=60)
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(rate)


@dataclass(frozen=True)
class Utterance:
    """One evaluation utterance: who speaks, what (for WER), and the audio."""

    speaker: str
    audio: np.ndarray
    sample_rate_hz: int
    text: str | None = None


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER of verification scores (labels: 1 target, 0 non-target), via sklearn's ROC curve.

    Taken where the miss and false-alarm rates cross, interpolated linearly between the two ROC
    points around the crossing.
    """
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        raise ValueError("EER needs both target and non-target trials")
    fpr, tpr, _ = roc_curve(labels, np.asarray(scores, dtype=np.float64))
    fnr = 1.0 - tpr
    diff = fnr - fpr  # decreasing from 1 to -1 along the curve
    i = int(np.argmax(diff <= 0))
    if i == 0 or diff[i] == 0:
        return float((fpr[i] + fnr[i]) / 2)
    # Crossing between points i-1 (fnr > fpr) and i (fnr <= fpr).
    w = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def _split(utterances: Sequence[Utterance], n_enroll: int) -> tuple[list[int], list[int]]:
    seen: dict[str, int] = {}
    enroll, trials = [], []
    for i, utt in enumerate(utterances):
        count = seen.get(utt.speaker, 0)
        (enroll if count < n_enroll else trials).append(i)
        seen[utt.speaker] = count + 1
    short = sorted(s for s, c in seen.items() if c <= n_enroll)
    if short:
        raise ValueError(f"speakers with no trial left after {n_enroll} enrollment: {short}")
    return enroll, trials


def verification_eer(
    enroll_emb: np.ndarray,
    enroll_speakers: Sequence[str],
    trial_emb: np.ndarray,
    trial_speakers: Sequence[str],
) -> float:
    """EER of every trial scored against every enrolled speaker's centroid (cosine)."""
    names = sorted(set(enroll_speakers))
    spk = np.asarray(enroll_speakers)
    centroids = np.stack([speaker.centroid(enroll_emb[spk == n]) for n in names])
    scores = speaker.cosine_matrix(trial_emb, centroids)
    labels = np.asarray(trial_speakers)[:, None] == np.asarray(names)[None, :]
    return equal_error_rate(scores.ravel(), labels.ravel())


def _corpus_wer(wer_fn: WerFn, utterances: Sequence[Utterance], audios: Sequence[np.ndarray]):
    """Word-count-weighted mean WER (= corpus WER when each clip's WER is errors / words)."""
    total, words = 0.0, 0
    for utt, audio in zip(utterances, audios, strict=True):
        if not utt.text:
            continue
        wer = wer_fn(audio, utt.sample_rate_hz, utt.text)
        if wer is None:
            continue
        n = len(utt.text.split())
        total += wer * n
        words += n
    return total / words if words else None


def _rng(seed: int, index: int, role: int) -> np.random.Generator:
    # One stream per utterance and role: results do not depend on evaluation order.
    return np.random.default_rng([seed, index, role])


def evaluate(
    utterances: Sequence[Utterance],
    methods: Mapping[str, str | Mapping[str, Any]],
    *,
    n_enroll: int = 3,
    seed: int = 0,
    wer_fn: WerFn | None = None,
) -> pd.DataFrame:
    """One row per method (index ``method``): eer_orig, eer_ignorant, eer_lazy_informed,
    wer_before, wer_after, rtf, plus similarity_to_original (mean cosine between each anonymized
    utterance and its original) and the trial counts.

    ``methods`` maps a row name to an ``anonymize`` level or method spec, e.g.
    ``{"none": {"method": "none"}, "mcadams 0.8": "low"}``. Utterances are grouped by
    ``speaker``; the first ``n_enroll`` of each speaker (in the given order) enroll it.
    """
    enroll, trials = _split(utterances, n_enroll)
    audios = [u.audio for u in utterances]
    rates = [u.sample_rate_hz for u in utterances]
    speakers = [u.speaker for u in utterances]
    original = speaker.embed_many(audios, rates)
    audio_s = sum(len(a) / r for a, r in zip(audios, rates, strict=True))
    e_spk = [speakers[i] for i in enroll]
    t_spk = [speakers[i] for i in trials]
    eer_orig = verification_eer(original[enroll], e_spk, original[trials], t_spk)
    wer_before = _corpus_wer(wer_fn, utterances, audios) if wer_fn else None
    n_targets = len(t_spk)
    rows = []
    for name, spec in methods.items():
        started = time.perf_counter()
        anon = [
            anonymize.anonymize(a, r, spec, _rng(seed, i, 0))[0]
            for i, (a, r) in enumerate(zip(audios, rates, strict=True))
        ]
        rtf = (time.perf_counter() - started) / audio_s
        anon_emb = speaker.embed_many(anon, rates)
        # The lazy-informed attacker anonymizes its enrollment audio itself: fresh random draws.
        enroll_anon = [
            anonymize.anonymize(audios[i], rates[i], spec, _rng(seed, i, 1))[0] for i in enroll
        ]
        enroll_anon_emb = speaker.embed_many(enroll_anon, [rates[i] for i in enroll])
        rows.append(
            {
                "method": name,
                "eer_orig": eer_orig,
                "eer_ignorant": verification_eer(original[enroll], e_spk, anon_emb[trials], t_spk),
                "eer_lazy_informed": verification_eer(
                    enroll_anon_emb, e_spk, anon_emb[trials], t_spk
                ),
                "wer_before": wer_before,
                "wer_after": _corpus_wer(wer_fn, utterances, anon) if wer_fn else None,
                "rtf": rtf,
                "similarity_to_original": float(np.mean(np.sum(original * anon_emb, axis=1))),
                "n_speakers": len(set(speakers)),
                "n_trials": n_targets * len(set(e_spk)),
            }
        )
    return pd.DataFrame(rows).set_index("method")


def pocketsphinx_wer(texts: Sequence[str]) -> WerFn:
    """A ``WerFn`` backed by the project's IntelligibilityValidator, its LM built from ``texts``."""
    from audio_synth_core.validators.base import Clip, ValidationContext
    from audio_synth_core.validators.intelligibility import IntelligibilityValidator

    validator = IntelligibilityValidator()
    validator.prepare(ValidationContext(texts=tuple(texts)))

    def wer(audio: np.ndarray, sample_rate_hz: int, text: str) -> float | None:
        clip = Clip(id="eval", audio=audio, sample_rate_hz=sample_rate_hz, text=text)
        return validator.measure(clip)["wer"]

    return wer
