"""Intelligibility: word and character error rate of pocketsphinx ASR against the input text.

pocketsphinx's general English LM recognises formant speech poorly (WER 0.6-0.8 on espeak), which
would hide real defects. So ``prepare`` builds a trigram LM from the run's own texts (the
back-off ARPA builder that ships with pocketsphinx, ``pocketsphinx.lm.ArpaBoLM``) and a dictionary
of exactly that vocabulary (``validators.pronunciation``: cmudict, else espeak-ng's own
pronunciation mapped from IPA to ARPAbet). Audio that does not say its text still scores badly:
the decoder can only produce the run's words, so speech of another sentence comes out as the
wrong words (WER near or above 1).

Every utterance is decoded independently of the ones before it (batch CMN, noise seeded per
clip), so a clip gets the same WER whatever shard or order it is validated in.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pydantic

from audio_synth_core.audio import resample
from audio_synth_core.plugins.params import StrictParams, parse_params
from audio_synth_core.validators.base import (
    CheckResult,
    Clip,
    MetricField,
    ValidationContext,
    Validator,
)
from audio_synth_core.validators.pronunciation import pronunciations
from audio_synth_core.validators.rules import audio_problem, limit_check

ASR_RATE_HZ = 16000

# Numbers keep their inner separators ("3.5", "10:30") so they stay one token, the way espeak
# reads them; words keep inner apostrophes ("don't").
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+(?:['][^\W\d_]+)*")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def normalize_words(text: str) -> list[str]:
    """Lower-cased word tokens without punctuation: the form both LM and scoring use."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    return _TOKEN.findall(text)


# -- decoder -----------------------------------------------------------------------------------


# ASR front end (measured on espeak speech, 38-sentence LM, 15 clips x clean/30/20/10/0 dB):
# level normalization, then a comfort-noise floor COMFORT_NOISE_DB below the speech, then
# PAD_S of that floor at both ends. Digital silence is far outside what the acoustic model was
# trained on: clean TTS scored worse than the same clip at 30 dB SNR (mean WER 0.26 vs 0.12)
# and the last word was often lost. With this front end clean WER is ~0.07, and WER rises
# monotonically as real noise passes the floor. (pocketsphinx's own 1/2-bit dither helped far
# less and its RNG runs on across utterances; ours is seeded per clip.)
TARGET_RMS_DBFS = -20.0
COMFORT_NOISE_DB = 35.0
PAD_S = 0.3
# LM weight: the LM is in-domain (the run's own texts), so it is trusted more than the default 6.5.
LM_WEIGHT = 10.0


def _asr_input(audio_16k: np.ndarray) -> np.ndarray:
    """int16 PCM for the decoder: normalized level, seeded comfort noise, padded ends."""
    x = audio_16k.astype(np.float64)
    rms = float(np.sqrt(np.mean(np.square(x))))
    if rms > 0:
        x *= 10 ** (TARGET_RMS_DBFS / 20) / rms
    pad = np.zeros(int(PAD_S * ASR_RATE_HZ))
    x = np.concatenate([pad, x, pad])
    noise_rms = 10 ** ((TARGET_RMS_DBFS - COMFORT_NOISE_DB) / 20)
    x += np.random.default_rng(0).standard_normal(x.size) * noise_rms
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


class _Recognizer:
    """A pocketsphinx decoder restricted to the vocabulary and trigram LM of a set of texts."""

    def __init__(self, texts: Sequence[str]) -> None:
        from pocketsphinx import Decoder, get_model_path
        from pocketsphinx.lm import ArpaBoLM

        sentences = [" ".join(ws) for ws in map(normalize_words, texts) if ws]
        if not sentences:
            raise ValueError("intelligibility needs at least one text with words to build its LM")
        lm = ArpaBoLM(text="\n".join(sentences), add_start=True)
        lm.compute()
        vocabulary = sorted({w for s in sentences for w in s.split()})
        # The decoder reads both files while it is built, so they live only that long.
        with tempfile.TemporaryDirectory(prefix="audio-synth-asr-") as workdir:
            lm_path = os.path.join(workdir, "run.arpa")
            with open(lm_path, "w", encoding="utf-8") as fh:
                lm.write(fh)
            dict_path = os.path.join(workdir, "run.dict")
            with open(dict_path, "w", encoding="utf-8") as fh:
                for word, prons in pronunciations(vocabulary).items():
                    for i, phones in enumerate(prons):
                        fh.write(f"{word}{f'({i + 1})' if i else ''} {phones}\n")
            self.decoder = Decoder(
                hmm=get_model_path("en-us/en-us"),
                lm=lm_path,
                dict=dict_path,
                samprate=ASR_RATE_HZ,
                lw=LM_WEIGHT,
                cmn="batch",
                dither=False,  # replaced by the seeded comfort noise of _asr_input
                loglevel="FATAL",
            )

    def transcribe(self, audio_16k: np.ndarray) -> str:
        pcm = _asr_input(audio_16k)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        return " ".join(re.sub(r"\(\d+\)$", "", w) for w in words)


_LOCK = threading.Lock()
# Recognizers per process, keyed by the texts they were built from: shards of one run share one,
# and two validators with different texts in one process do not rebuild on every clip.
_RECOGNIZERS: OrderedDict[str, _Recognizer] = OrderedDict()
_MAX_RECOGNIZERS = 4


def _texts_key(texts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()


def _recognizer(texts: Sequence[str], key: str | None = None) -> _Recognizer:
    """The recognizer of ``texts`` (``key``: their ``_texts_key``, if already computed)."""
    key = key or _texts_key(texts)
    with _LOCK:
        if key in _RECOGNIZERS:
            _RECOGNIZERS.move_to_end(key)
        else:
            _RECOGNIZERS[key] = _Recognizer(texts)
            while len(_RECOGNIZERS) > _MAX_RECOGNIZERS:
                _RECOGNIZERS.popitem(last=False)
        return _RECOGNIZERS[key]


def error_rates(reference: str, hypothesis: str) -> tuple[float | None, float | None]:
    """(WER, CER) of normalized texts; None when the reference has no words."""
    import jiwer

    ref = " ".join(normalize_words(reference))
    hyp = " ".join(normalize_words(hypothesis))
    if not ref:
        return None, None
    return float(jiwer.wer(ref, hyp)), float(jiwer.cer(ref, hyp))


class IntelligibilityParams(StrictParams):
    # Measured on espeak (38-text LM): clean mean 0.09 (a few accented clips up to 0.5 on short
    # sentences), 20 dB 0.1, 10 dB 0.3, 0 dB 0.85, audio of a text not in the LM ~1.0.
    max_wer: float = pydantic.Field(0.4, ge=0)


def _is_english(clip: Clip) -> bool:
    language = clip.attributes.get("language") if clip.attributes else None
    return not language or str(language).lower().replace("_", "-").split("-")[0] == "en"


class IntelligibilityValidator(Validator):
    """ASR word/character error rate of one clip against its text (English)."""

    name: ClassVar[str] = "intelligibility"
    version: ClassVar[str] = "1"
    fields: ClassVar[tuple[MetricField, ...]] = (
        MetricField(
            "wer",
            pa.float64(),
            "ratio",
            "pocketsphinx word error rate vs the clip text, LM from the run's texts "
            "(null for non-English clips, attribute 'language', or clips without text)",
            direction="lower",
            valid_range=(0.0, None),
            sample_priority=20,
        ),
        MetricField(
            "cer",
            pa.float64(),
            "ratio",
            "character error rate, same transcript",
            direction="lower",
            valid_range=(0.0, None),
        ),
        MetricField("asr_text", pa.string(), "", "pocketsphinx transcript (normalized)"),
        # No direction: it measures the measuring (ASR speed), not the audio.
        MetricField(
            "asr_rtf",
            pa.float64(),
            "ratio",
            "recognition time / audio duration",
            valid_range=(0.0, None),
        ),
        MetricField(
            "asr_status",
            pa.string(),
            "",
            "ok | not_english | no_text (not measured, not a failure) | unreadable_audio",
        ),
    )

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(IntelligibilityParams, self.name, params, "validator")
        super().__init__(**self.config.model_dump())
        self._texts: tuple[str, ...] = ()
        self._texts_key: str | None = None

    def prepare(self, context: ValidationContext) -> None:
        """Build (or reuse) the LM and dictionary of ``context.texts``."""
        self._texts = tuple(t for t in context.texts if t)
        # Hashed once per shard, not once per clip (a shard has hundreds of texts).
        self._texts_key = _texts_key(self._texts) if self._texts else None
        if self._texts:
            _recognizer(self._texts, self._texts_key)

    def measure(self, clip: Clip) -> dict[str, Any]:
        skipped: dict[str, Any] = dict.fromkeys((f.name for f in self.fields), None)
        if not clip.text or not normalize_words(clip.text):
            return {**skipped, "asr_status": "no_text"}
        if not _is_english(clip):
            return {**skipped, "asr_status": "not_english"}
        audio = np.asarray(clip.audio)
        if audio_problem(audio, clip.sample_rate_hz) is not None:
            return {**skipped, "asr_status": "unreadable_audio"}
        # A clip measured without prepare() still gets an LM: its own text (a forced check).
        if self._texts:
            recognizer = _recognizer(self._texts, self._texts_key)
        else:
            recognizer = _recognizer((clip.text,))
        started = time.perf_counter()
        audio_16k = resample(np.clip(audio, -1.0, 1.0), clip.sample_rate_hz, ASR_RATE_HZ)
        asr_text = recognizer.transcribe(audio_16k)
        elapsed = time.perf_counter() - started
        wer, cer = error_rates(clip.text, asr_text)
        return {
            "wer": wer,
            "cer": cer,
            "asr_text": asr_text,
            "asr_rtf": elapsed / (audio.size / clip.sample_rate_hz),
            "asr_status": "ok",
        }

    def check(self, metrics: Mapping[str, Any]) -> list[CheckResult]:
        status = metrics.get("asr_status")
        if status in ("no_text", "not_english"):
            return []  # deliberately not measured
        if status != "ok":
            return [
                CheckResult("max_wer", None, self.config.max_wer, "no WER: audio is unreadable")
            ]
        failed = limit_check("max_wer", "wer", metrics.get("wer"), self.config.max_wer)
        return [failed] if failed is not None else []
