"""DNSMOS: non-intrusive MOS predictions (ITU-T P.808 overall, P.835 SIG/BAK/OVRL).

The ONNX models ship inside the ``speechmos`` package (Microsoft DNS Challenge models). We use
speechmos's feature extraction and polynomial calibration but build the ONNX sessions ourselves,
pinned to one thread (our workers are processes), lazily and once per process.

Scoring follows the reference (speechmos / the DNS Challenge script): clips under 9.01 s are tiled
to that length and every 9.01 s window ``hop_s`` apart is scored. Three things make it cheaper:
all windows of a clip go through each model in one batched call; only the models asked for run
(``models``; the mel features are computed only for P.808); and a clip shorter than one window
scores only its first tiled window (``windows="distinct"``, the default), because its other
windows are the same audio shifted. That is the only change in the numbers: on the benchmark
clips (espeak, 2-5 s) ``benchmarks/validators.py`` prints how far it moves each score from
``windows="reference"``, which is the reference exactly.

Why not faster: the P.835 network spends ~40 GFLOP on convolutions per 9.01 s window, ~270 ms on
one core, and its output depends on how the tiled copies fall on its pooling grid (one circular
pass over a short clip instead of the tiled window moved OVRL by up to 0.8), so a short clip
cannot cost less than one window without changing what the score means. Three convolutions at full
resolution are 91 % of that time (ONNX Runtime's profile). int8 static quantization of the network's
convolutions (onnxruntime ``quantize_static``, per channel) ran 1.7-1.9x faster but moved OVRL, SIG
and BAK by up to 0.2-0.45 on clean and noisy espeak clips, so it is not offered: a GPU worker is
the way to a faster DNSMOS.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

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
from audio_synth_core.validators.rules import audio_problem, limit_check

MODEL_RATE_HZ = 16000
# DNSMOS scores 9.01 s windows (shorter clips are tiled to that length), as in the reference code.
WINDOW_S = 9.01
_WINDOW = int(WINDOW_S * MODEL_RATE_HZ)
# Windows per P.835 call: the first convolution holds 128 x 900 x 161 floats (74 MB) per window.
_MAX_BATCH = 4


class _Scorer:
    """The two ONNX sessions plus speechmos's mel features and calibration polynomials."""

    def __init__(self) -> None:
        import onnxruntime as ort
        from speechmos import dnsmos

        models = os.path.join(os.path.dirname(os.path.abspath(dnsmos.__file__)), "dnsmos_models")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.p835 = ort.InferenceSession(
            os.path.join(models, "sig_bak_ovr.onnx"), opts, providers=providers
        )
        self.p808 = ort.InferenceSession(
            os.path.join(models, "model_v8.onnx"), opts, providers=providers
        )
        # Only the pure helpers of speechmos's DNSMOS class are used (no session is built here).
        self.helpers = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)

    def score(
        self, audio: np.ndarray, hop_s: float, models: frozenset[str], reference: bool
    ) -> dict[str, float]:
        """Mean P.808 and/or P.835 scores over 9.01 s windows every ``hop_s`` s (16 kHz audio)."""
        tiled = _tiled(audio)
        segments = _windows(tiled, hop_s)
        if not reference and len(audio) < _WINDOW:
            # A short clip's tiled windows are the same audio shifted: the first stands for all.
            segments = segments[:1]
        out: dict[str, float] = {}
        if not segments:
            return out  # no whole window (not reached after tiling): no score, as the reference
        if "p808" in models:
            mels = np.stack([self.helpers.audio_melspec(audio=s[:-160]) for s in segments])
            p808 = self.p808.run(None, {"input_1": mels.astype(np.float32)})[0][:, 0]
            out["mos_p808"] = float(np.mean(p808))
        if "p835" in models:
            batch = np.stack(segments)
            raw = np.concatenate(
                [
                    self.p835.run(None, {"input_1": batch[i : i + _MAX_BATCH]})[0]
                    for i in range(0, len(batch), _MAX_BATCH)
                ]
            )
            sig, bak, ovrl = self.helpers.get_polyfit_val(raw[:, 0], raw[:, 1], raw[:, 2], False)
            out.update(
                mos_sig=float(np.mean(sig)),
                mos_bak=float(np.mean(bak)),
                mos_ovrl=float(np.mean(ovrl)),
            )
        return out


def _tiled(audio: np.ndarray) -> np.ndarray:
    while len(audio) < _WINDOW:
        audio = np.append(audio, audio)
    return audio


def _windows(audio: np.ndarray, hop_s: float) -> list[np.ndarray]:
    """The reference's whole 9.01 s windows every ``hop_s`` seconds of (tiled) audio, float32."""
    # Window count exactly as the reference computes it.
    n_windows = int((np.floor(len(audio) / MODEL_RATE_HZ) - WINDOW_S) / hop_s) + 1
    starts = (int(i * hop_s * MODEL_RATE_HZ) for i in range(n_windows))
    return [audio[s : s + _WINDOW].astype(np.float32) for s in starts if s + _WINDOW <= len(audio)]


_LOCK = threading.Lock()
_SCORER: _Scorer | None = None


def _scorer() -> _Scorer:
    global _SCORER
    with _LOCK:
        if _SCORER is None:
            _SCORER = _Scorer()
        return _SCORER


class DnsmosParams(StrictParams):
    # Measured OVRL on 20 espeak clips (4 voices): clean 2.20-2.95, 30 dB SNR 2.34-3.0, 20 dB
    # 2.0-2.66, 10 dB 1.82-2.19, 0 dB ~1.6. 2.1 passes all clean clips and flags most at 10 dB.
    min_ovrl: float = pydantic.Field(2.1, ge=1, le=5)
    # 1.0 s is the reference hop (scores comparable with published DNSMOS numbers); 9.01 scores
    # a long clip's windows without overlap.
    hop_s: float = pydantic.Field(1.0, gt=0)
    # "distinct": one window for a clip under 9.01 s (see the module doc); "reference": speechmos.
    windows: Literal["distinct", "reference"] = "distinct"
    # The models to run; the other's metrics are null (without "p835" min_ovrl checks nothing).
    models: list[Literal["p808", "p835"]] = pydantic.Field(
        default_factory=lambda: ["p808", "p835"], min_length=1
    )


def _f(name: str, description: str, sample_priority: int | None = None) -> MetricField:
    # No valid_range: the calibration polynomials are not clamped, so a score can leave 1-5
    # slightly (full-scale noise scores OVRL 1.06), and that is a bad clip, not bad data.
    return MetricField(
        name, pa.float64(), "MOS", description, direction="higher", sample_priority=sample_priority
    )


class DnsmosValidator(Validator):
    """DNSMOS P.808 and P.835 predicted opinion scores (1-5) of one clip."""

    name: ClassVar[str] = "dnsmos"
    # 2: one window for clips under 9.01 s by default (windows="reference" is version 1).
    version: ClassVar[str] = "2"
    fields: ClassVar[tuple[MetricField, ...]] = (
        _f("mos_p808", "DNSMOS P.808 overall quality, 1-5"),
        _f("mos_sig", "DNSMOS P.835 speech signal quality (SIG), 1-5"),
        _f("mos_bak", "DNSMOS P.835 background noise quality (BAK), 1-5"),
        _f("mos_ovrl", "DNSMOS P.835 overall quality (OVRL), 1-5", sample_priority=10),
    )

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(DnsmosParams, self.name, params, "validator")
        super().__init__(**self.config.model_dump(mode="json"))

    def prepare(self, context: ValidationContext) -> None:
        _scorer()  # build the sessions before the first clip, not inside its timing

    def measure(self, clip: Clip) -> dict[str, Any]:
        audio = np.asarray(clip.audio)
        empty: dict[str, Any] = dict.fromkeys((f.name for f in self.fields), None)
        if audio_problem(audio, clip.sample_rate_hz) is not None:
            return empty
        if not np.any(audio):
            return empty  # digital silence: the mel features are undefined (log of zero)
        audio = np.clip(resample(audio, clip.sample_rate_hz, MODEL_RATE_HZ), -1.0, 1.0)
        scores = _scorer().score(
            audio,
            self.config.hop_s,
            frozenset(self.config.models),
            reference=self.config.windows == "reference",
        )
        return {**empty, **{k: (v if np.isfinite(v) else None) for k, v in scores.items()}}

    def check(self, metrics: Mapping[str, Any]) -> list[CheckResult]:
        if "p835" not in self.config.models:
            return []  # no OVRL measured: nothing to check
        failed = limit_check("min_ovrl", "mos_ovrl", metrics.get("mos_ovrl"), self.config.min_ovrl)
        return [failed] if failed is not None else []
