"""Export a ``TTSModel`` to an ONNX bundle, quantize it to int8, and measure parity with torch.

The bundle (``export_onnx``) holds three graphs, exported with the TorchScript exporter
(``dynamo=False``, opset 17) with dynamic batch and length axes:

- ``encoder.onnx``: ``ids [B, N] int64, lengths [B] int64`` -> ``h [B, N, C]``, ``mu [B, N, n_mels]``,
  ``dur_exp [B, N]`` (``exp`` of the log durations), ``mask [B, N] bool`` (``AcousticModel.encode``).
- ``decoder.onnx``: ``h, mu [B, T, .]``, ``mask [B, T] bool``, ``noise`` -> log-mel
  ``[B, n_mels, T]`` (``DecoderGraph``). VAE latents and diffusion noise are the explicit ``noise``
  input; its layout goes into ``tts.json``. The diffusion decoder's DDIM loop has a fixed number of
  steps (``inference_steps``), so the tracer unrolls it into this one graph (the denoiser's weights
  are stored once and shared by every step); no loop runs outside the graph.
- ``vocoder.onnx``: HiFi-GAN, ``mel [B, n_mels, T]`` -> ``audio [B, T * hop]``. A Griffin-Lim model
  exports no vocoder graph (``"vocoder": "griffinlim"``); the runtime uses torchaudio's.

Duration rounding and length regulation run in numpy between the two acoustic graphs (see
``audio_synth_core.generators.onnx``), so the length scale stays a run-time setting.

``tts.json`` (written last: a folder with it is complete) makes the bundle self-contained: the
``TTSModel`` config (frontend with vocabulary, mel settings, acoustic and vocoder configs), decoder
and vocoder kind, length scale, sample rate, language, the noise layout, the vocoder's context in
frames, and the name, size and sha256 of every graph.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
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
import onnx
import torch
from torch import nn

from audio_synth_core.audio import levels
from audio_synth_core.generators.onnx import (
    BATCH_AXIS,
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    DEFAULT_LANGUAGE,
    FRAMES_AXIS,
    GRAPHS,
    MANIFEST,
    OnnxTTS,
    noise_item,
)
from audio_synth_core.models.acoustic import AcousticModel, DecoderGraph, expand
from audio_synth_core.models.metrics import copy_synthesis_metrics
from audio_synth_core.models.tts import TTSModel

OPSET = 17
# Sizes no real model has, so noise_shape's output can be read back as a layout.
_BATCH_PROBE, _FRAMES_PROBE = 100_003, 100_019
_MB = 1024 * 1024


class EncoderOutputs(nn.Module):
    """``AcousticModel.encode`` as a graph: ids, lengths -> hidden, mu, ``exp(log durations)``,
    mask. The ``exp`` is done here, as ``durations_from_log`` does it, so that only exact float32
    arithmetic (subtract, scale, round, clamp) is left to numpy."""

    def __init__(self, model: AcousticModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        h, mu, log_dur, mask = self.model.encode(ids, lengths)
        return h, mu, torch.exp(log_dur), mask


def noise_layout(model: AcousticModel) -> list[int | str]:
    """``model.noise_shape`` as a layout: ``"batch"``/``"frames"`` where those sizes go."""
    names = {_BATCH_PROBE: BATCH_AXIS, _FRAMES_PROBE: FRAMES_AXIS}
    return [names.get(int(s), int(s)) for s in model.noise_shape(_BATCH_PROBE, _FRAMES_PROBE)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _export_graph(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    target: Path,
    inputs: list[str],
    outputs: list[str],
    axes: dict[str, dict[int, str]],
) -> None:
    tmp = target.with_name(target.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            module.eval(),
            args,
            str(tmp),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(str(tmp))
    os.replace(tmp, target)


@torch.no_grad()
def vocoder_context_frames(
    tts: TTSModel, limit: int = 256, atol: float = 1e-5, trials: int = 2
) -> int:
    """How many frames after a clip's end can still change its samples (measured, not derived).

    A clip followed by ``c`` frames of log-floor and then whatever padding is compared with the
    same clip followed by ``limit`` frames of log-floor; the smallest ``c`` that gives the same
    samples (bisection), plus one frame of margin. Covers the convolutions' reach and the inverse
    STFT's overlap-add at the end of the input."""
    vocoder, mel_config = tts.vocoder, tts.mel_config
    floor = float(np.log(mel_config.log_floor))
    hop, device = mel_config.hop_length, tts.device
    g = torch.Generator().manual_seed(0)
    worst = 0
    for _ in range(trials):
        n = 24
        mel = (torch.randn(1, mel_config.n_mels, n, generator=g) * 2.0 - 6.0).to(device)

        def run(extra: int, mel: torch.Tensor = mel, n: int = n) -> torch.Tensor:
            tail = torch.full((1, mel.shape[1], extra), floor, device=device)
            return vocoder(torch.cat([mel, tail], dim=2))[0, : n * hop]

        reference = run(limit)
        lo, hi = 0, limit
        while lo < hi:
            mid = (lo + hi) // 2
            if torch.allclose(run(mid), reference, rtol=0.0, atol=atol):
                hi = mid
            else:
                lo = mid + 1
        worst = max(worst, lo)
    return worst + 1


@torch.no_grad()
def padding_invariance(tts: TTSModel, atol: float = 1e-5) -> dict[str, bool]:
    """Whether the encoder and the decoder give an item the same output alone as when padded in a
    batch behind a longer item (measured on random ids and noise, to ``atol``).

    The runtime batches a graph across items only where this holds; elsewhere it runs that graph
    item by item, so that no item depends on its neighbours."""
    acoustic = tts.acoustic
    device = tts.device
    g = torch.Generator().manual_seed(1)
    n_long, n_short = 23, 9
    ids = torch.randint(0, acoustic.config.n_symbols, (2, n_long), generator=g).to(device)
    ids[1, n_short:] = 0
    lengths = torch.tensor([n_long, n_short], device=device)
    batch = acoustic.encode(ids, lengths)
    alone = acoustic.encode(ids[1:, :n_short], lengths[1:])
    encoder_ok = all(
        torch.allclose(b[1, :n_short].float(), a[0].float(), rtol=0.0, atol=atol)
        for b, a in zip(batch, alone, strict=True)
    )
    h, mu, _, mask = batch
    # Fixed durations: item 1 (9 frames) is padded behind item 0 (46 frames).
    durations = mask.long() * torch.tensor([[2], [1]], device=device)
    h_frames, frame_mask = expand(h, durations)
    mu_frames, _ = expand(mu, durations)
    n = n_short
    noise = torch.randn(acoustic.noise_shape(2, h_frames.shape[1]), generator=g).to(device)
    mel = acoustic.decode(h_frames, mu_frames, frame_mask, noise)
    mel_alone = acoustic.decode(
        h_frames[1:, :n],
        mu_frames[1:, :n],
        frame_mask[1:, :n],
        noise_item(noise, noise_layout(acoustic), 1, n),
    )
    decoder_ok = torch.allclose(mel[1, :, :n], mel_alone[0], rtol=0.0, atol=atol)
    return {"encoder": bool(encoder_ok), "decoder": bool(decoder_ok)}


def _graph_entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)}


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    os.replace(tmp, out / MANIFEST)


def export_onnx(tts: TTSModel, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the ONNX bundle of ``tts`` into ``out_dir``; returns the manifest (``tts.json``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # an interrupted export must not look complete
    acoustic = tts.acoustic.eval()
    device = tts.device
    config = acoustic.config

    # Trace with a padded batch of two, so nothing specializes on batch 1 or on full lengths.
    g = torch.Generator().manual_seed(0)
    n_symbols = max(config.n_symbols, 4)
    ids = torch.randint(3, n_symbols, (2, 9), generator=g).clamp(max=config.n_symbols - 1)
    lengths = torch.tensor([9, 5])
    ids[1, 5:] = 0
    ids, lengths = ids.to(device), lengths.to(device)
    seq = {0: "batch", 1: "symbols"}
    _export_graph(
        EncoderOutputs(acoustic),
        (ids, lengths),
        out / "encoder.onnx",
        ["ids", "lengths"],
        ["h", "mu", "dur_exp", "mask"],
        {"ids": seq, "lengths": {0: "batch"}, "h": seq, "mu": seq, "dur_exp": seq, "mask": seq},
    )

    with torch.no_grad():
        h, mu, log_dur, mask = acoustic.encode(ids, lengths)
        durations = acoustic.durations_from_log(log_dur, mask, tts.length_scale)
        h_frames, frame_mask = expand(h, durations)
        mu_frames, _ = expand(mu, durations)
    layout = noise_layout(acoustic)
    shape = acoustic.noise_shape(2, h_frames.shape[1])
    noise = torch.randn(shape, generator=g).to(device)
    frames = {0: "batch", 1: "frames"}
    noise_axes = {i: a for i, a in enumerate(layout) if isinstance(a, str)}
    _export_graph(
        DecoderGraph(acoustic),
        (h_frames, mu_frames, frame_mask, noise),
        out / "decoder.onnx",
        ["h", "mu", "mask", "noise"],
        ["mel"],
        {
            "h": frames,
            "mu": frames,
            "mask": frames,
            "noise": noise_axes,
            "mel": {0: "batch", 2: "frames"},
        },
    )

    files = {
        "encoder": _graph_entry(out / "encoder.onnx"),
        "decoder": _graph_entry(out / "decoder.onnx"),
    }
    context = 0
    (out / "vocoder.onnx").unlink(missing_ok=True)
    if tts.vocoder_kind == "hifigan":
        mel = torch.randn(2, tts.mel_config.n_mels, 7, generator=g).to(device) - 5.0
        _export_graph(
            tts.vocoder.eval(),
            (mel,),
            out / "vocoder.onnx",
            ["mel"],
            ["audio"],
            {"mel": {0: "batch", 2: "frames"}, "audio": {0: "batch", 1: "samples"}},
        )
        files["vocoder"] = _graph_entry(out / "vocoder.onnx")
        context = vocoder_context_frames(tts)

    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "sample_rate_hz": tts.sample_rate_hz,
        "language": tts.frontend.voice or DEFAULT_LANGUAGE,
        "decoder": config.decoder,
        "vocoder": tts.vocoder_kind,
        "length_scale": tts.length_scale,
        "noise": {"shape": layout},
        "vocoder_context_frames": context,
        "padding_invariant": padding_invariance(tts),
        "opset": OPSET,
        "quantization": None,
        "model": tts.config(),
        "files": files,
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
    }
    _write_manifest(out, manifest)
    return manifest


def _pretransposed_gemms(model: onnx.ModelProto) -> onnx.ModelProto:
    """``Gemm(transB=1)`` on an initializer -> ``Gemm(transB=0)`` on one transposed copy of it.

    quantize_dynamic rewrites each such Gemm as a MatMul by transposing its weight in place,
    assuming no other node uses it; in the unrolled diffusion loop every step shares the step
    MLP's weights, so they were transposed once per step and the shapes no longer matched."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    transposed: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "Gemm" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transB", 0) != 1:
            continue
        name = node.input[1]
        if name not in transposed:
            array = numpy_helper.to_array(inits[name]).T.copy()
            transposed[name] = f"{name}__t"
            graph.initializer.append(numpy_helper.from_array(array, transposed[name]))
        node.input[1] = transposed[name]
        for attr in node.attribute:
            if attr.name == "transB":
                attr.i = 0
    used = {i for node in graph.node for i in node.input}
    for name in transposed:
        if name not in used:
            graph.initializer.remove(inits[name])
    return model


class _DropPreprocessHint(logging.Filter):
    """quantize_dynamic logs a hint to run its pre-processing on the root logger at every call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _quantize_graphs(
    src: Path,
    out: Path,
    manifest: dict[str, Any],
    files: dict[str, Any],
    op_types: Sequence[str] | None,
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for graph in GRAPHS:
        if graph not in manifest["files"]:
            continue
        name = manifest["files"][graph]["file"]
        tmp = out / (name + ".tmp")
        float_tmp = out / (name + ".float.tmp")
        onnx.save(_pretransposed_gemms(onnx.load(src / name)), float_tmp)
        quantize_dynamic(
            float_tmp,
            tmp,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(op_types) if op_types is not None else None,
            # Shape inference cannot type some tensors of the unrolled diffusion loop; all are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        float_tmp.unlink()
        # The quantizer keeps the shape-inference annotations of every tensor: metadata
        # onnxruntime does not need, ~15% of an unrolled diffusion graph.
        model = onnx.load(tmp)
        del model.graph.value_info[:]
        onnx.save(model, tmp)
        os.replace(tmp, out / name)
        files[graph] = _graph_entry(out / name)


def quantize_int8(
    onnx_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    op_types: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Dynamic int8 quantization (onnxruntime ``quantize_dynamic``, QInt8 weights, activations
    quantized at run time) of every graph of a bundle; writes a complete bundle into ``out_dir``.

    ``op_types`` None quantizes every op type onnxruntime can (Conv, MatMul, Gemm, Gather, ...):
    the smallest bundle, but onnxruntime's CPU ``ConvInteger`` is slower than its float Conv, and
    these models are mostly convolutions. ``("MatMul", "Gemm", "Gather")`` keeps convolutions in
    float: close to fp32 speed, a smaller saving."""
    src, out = Path(onnx_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    source_raw = (src / MANIFEST).read_bytes()
    manifest = json.loads(source_raw)
    files = {}
    hint = _DropPreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        _quantize_graphs(src, out, manifest, files, op_types)
    finally:
        logging.getLogger().removeFilter(hint)
    manifest["files"] = files
    manifest["quantization"] = {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "op_types": list(op_types) if op_types is not None else "all",
        "source_version": "sha256:" + hashlib.sha256(source_raw).hexdigest()[:16],
    }
    _write_manifest(out, manifest)
    return manifest


# ---------------------------------------------------------------------------------------------
# Parity


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
