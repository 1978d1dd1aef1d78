"""Parity of an exported model with torch (``parity``): torch vs fp32 ONNX vs int8 ONNX on one
batch with the same noise: frame counts, mel and waveform differences, level and duration
differences, copy-synthesis metrics, wall time and size.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audio_synth_core.audio import levels
from audio_synth_core.generators.onnx_runtime import MANIFEST, OnnxTTS
from audio_synth_core.models.metrics import copy_synthesis_metrics
from audio_synth_core.models.quantization import quantize_int8
from audio_synth_core.models.tts import TTSModel

_MB = 1024 * 1024


def _diffs(reference: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> dict[str, float]:
    """Max |difference| and relative L2 over the common length of each pair (last axis)."""
    num = den = 0.0
    worst = 0.0
    for r, t in zip(reference, test, strict=True):
        n = min(r.shape[-1], t.shape[-1])
        d = r[..., :n].astype(np.float64) - t[..., :n].astype(np.float64)
        worst = max(worst, float(np.abs(d).max()) if d.size else 0.0)
        num += float(np.sum(d**2))
        den += float(np.sum(r[..., :n].astype(np.float64) ** 2))
    return {"max_abs_diff": worst, "rel_l2": math.sqrt(num / den) if den > 0 else 0.0}


def _state_bytes(tts: TTSModel) -> int:
    total = 0
    for module in (tts.acoustic, tts.vocoder):
        if module is not None:
            buf = io.BytesIO()
            torch.save(module.state_dict(), buf)
            total += buf.tell()
    return total


def bundle_bytes(onnx_dir: str | os.PathLike[str]) -> int:
    """Total size of a bundle's graphs."""
    manifest = json.loads((Path(onnx_dir) / MANIFEST).read_text())
    return sum(int(entry["bytes"]) for entry in manifest["files"].values())


def _copy_metrics(
    reference: np.ndarray, test: np.ndarray, rate: int, tts: TTSModel
) -> dict[str, float | None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = copy_synthesis_metrics(reference, test, rate, tts.mel_config)
    # pystoi warns and returns 1e-5 when a clip has too few active frames: not a measurement.
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        out["stoi"] = None
    return out


def _compare(
    tts: TTSModel,
    runtime: OnnxTTS,
    ids: list[list[int]],
    seed: int,
    torch_mel: list[np.ndarray],
    torch_audio: list[np.ndarray],
) -> dict[str, Any]:
    device = tts.device

    def torch_noise(frames: np.ndarray) -> np.ndarray:
        # The draw TTSModel.mels makes: one randn of noise_shape from a generator seeded `seed`.
        shape = tts.acoustic.noise_shape(len(frames), int(frames.max()))
        generator = torch.Generator(device).manual_seed(seed)
        return torch.randn(shape, generator=generator, device=device).cpu().numpy()

    start = time.perf_counter()
    mel, frames = runtime.mels(ids, torch_noise, independent=False)
    audio = runtime.vocode(mel, frames, independent=False)
    elapsed = time.perf_counter() - start
    mels = [mel[i, :, : int(n)] for i, n in enumerate(frames)]
    rate = tts.sample_rate_hz
    copy = [_copy_metrics(r, t, rate, tts) for r, t in zip(torch_audio, audio, strict=True)]
    copy_mean = {
        key: (float(np.mean(vals)) if all(v is not None for v in vals) else None)
        for key in copy[0]
        for vals in [[c[key] for c in copy]]
    }
    want = [m.shape[-1] for m in torch_mel]
    return {
        "frames": [int(n) for n in frames],
        "frames_equal": [int(n) for n in frames] == want,
        "frames_max_delta": max(abs(int(n) - w) for n, w in zip(frames, want, strict=True)),
        "mel": _diffs(torch_mel, mels),
        "wave": _diffs(torch_audio, audio),
        "duration_s_max_delta": max(
            abs(len(r) - len(t)) / rate for r, t in zip(torch_audio, audio, strict=True)
        ),
        "rms_dbfs_max_delta": max(
            abs(levels(r, rate).rms_dbfs - levels(t, rate).rms_dbfs)
            for r, t in zip(torch_audio, audio, strict=True)
        ),
        "copy_synthesis": copy_mean,
        "seconds": elapsed,
        "size_mb": bundle_bytes(runtime.directory) / _MB,
    }


def parity(
    tts: TTSModel,
    onnx_dir: str | os.PathLike[str],
    texts: Sequence[str],
    seed: int = 0,
    int8_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Torch vs ONNX vs int8 ONNX on one batch of ``texts`` with the same noise.

    The torch side is ``TTSModel.mels`` / ``TTSModel.synthesize`` as they are; the ONNX side runs
    the bundle with the noise those draw (``torch.Generator(device).manual_seed(seed)``) and the
    same batch vocoding. Per variant: frame counts, max |diff| and relative L2 of the log-mel and
    the waveform (over the common length where lengths differ), the largest duration and RMS-level
    (dBFS) differences, copy-synthesis metrics (``metrics.copy_synthesis_metrics``, torch audio as
    reference, mean over clips), wall time and graph size. ``int8_dir`` defaults to a temporary
    ``quantize_int8`` of ``onnx_dir``."""
    texts = list(texts)
    start = time.perf_counter()
    mel, frames = tts.mels(texts, seed)
    torch_audio = tts.synthesize(texts, seed)
    torch_s = time.perf_counter() - start
    mel_np = mel.cpu().numpy()
    torch_mel = [mel_np[i, :, : int(n)] for i, n in enumerate(frames.tolist())]
    ids = [tts.frontend.encode(t) for t in texts]

    tmp = None
    if int8_dir is None:
        tmp = tempfile.mkdtemp(prefix="audio-synth-int8-")
        quantize_int8(onnx_dir, tmp)
        int8_dir = tmp
    try:
        report: dict[str, Any] = {
            "texts": len(texts),
            "seed": seed,
            "torch": {
                "frames": [int(n) for n in frames.tolist()],
                "seconds": torch_s,
                "size_mb": _state_bytes(tts) / _MB,
            },
        }
        for name, folder in (("onnx", onnx_dir), ("int8", int8_dir)):
            runtime = OnnxTTS(folder)
            report[name] = _compare(tts, runtime, ids, seed, torch_mel, torch_audio)
        return report
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
