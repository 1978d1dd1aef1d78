"""Export a ``TTSModel`` to an ONNX bundle (``export_onnx``): three graphs and ``tts.json``.

The graphs are exported with the TorchScript exporter (``dynamo=False``, opset 17) with dynamic
batch and length axes:

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
``audio_synth_core.generators.onnx_runtime``), so the length scale stays a run-time setting.

``tts.json`` (written last: a folder with it is complete) makes the bundle self-contained: the
``TTSModel`` config (frontend with vocabulary, mel settings, acoustic and vocoder configs), decoder
and vocoder kind, length scale, sample rate, language, the noise layout, the vocoder's context in
frames, and the name, size and sha256 of every graph.

``quantization.quantize_int8`` makes an int8 copy of a bundle; ``parity.parity`` measures both
against torch.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from audio_synth_core.generators.model_folders import sha256_file
from audio_synth_core.generators.onnx_runtime import (
    BATCH_AXIS,
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    DEFAULT_LANGUAGE,
    FRAMES_AXIS,
    MANIFEST,
    noise_item,
)
from audio_synth_core.models.acoustic import AcousticModel, DecoderGraph
from audio_synth_core.models.alignment import expand
from audio_synth_core.models.tts import TTSModel

OPSET = 17
# Sizes no real model has, so noise_shape's output can be read back as a layout.
_BATCH_PROBE, _FRAMES_PROBE = 100_003, 100_019


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


def graph_entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
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
        "encoder": graph_entry(out / "encoder.onnx"),
        "decoder": graph_entry(out / "decoder.onnx"),
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
        files["vocoder"] = graph_entry(out / "vocoder.onnx")
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
    write_manifest(out, manifest)
    return manifest
