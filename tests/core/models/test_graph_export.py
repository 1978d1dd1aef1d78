"""The acoustic model (two graphs) and the vocoder export to ONNX with dynamic batch and length."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from audio_synth_core.models.acoustic import (
    AcousticConfig,
    AcousticModel,
    DecoderGraph,
    EncoderGraph,
)
from audio_synth_core.models.vocoder import HiFiGAN, VocoderConfig

from .conftest import TINY_ACOUSTIC


def _export(module: torch.nn.Module, args: tuple, names: list[str], outputs: list[str], dyn):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation/tracer notes
        torch.onnx.export(
            module.eval(),
            args,
            buf,
            input_names=names,
            output_names=outputs,
            dynamic_axes=dyn,
            opset_version=17,
            dynamo=False,
        )
    return ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])


def test_vocoder_exports() -> None:
    model = HiFiGAN(VocoderConfig()).eval()
    session = _export(
        model, (torch.randn(1, 80, 6),), ["mel"], ["audio"], {"mel": {0: "b", 2: "t"}}
    )
    mel = torch.randn(2, 80, 9)
    (audio,) = session.run(None, {"mel": mel.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(audio, model(mel).numpy(), atol=1e-5)


@pytest.mark.parametrize("decoder", ["vae", "diffusion"])
def test_acoustic_graphs_export(decoder: str) -> None:
    torch.manual_seed(0)
    model = AcousticModel(AcousticConfig(n_symbols=20, decoder=decoder, **TINY_ACOUSTIC)).eval()
    enc, dec = EncoderGraph(model), DecoderGraph(model)
    ids, lengths = torch.randint(3, 20, (1, 7)), torch.tensor([7])
    with torch.no_grad():
        h, mu, mask = enc(ids, lengths)
    frames = {0: "b", 1: "t"}
    enc_session = _export(
        enc,
        (ids, lengths),
        ["ids", "lengths"],
        ["h", "mu", "mask"],
        {"ids": {0: "b", 1: "n"}, "lengths": {0: "b"}, "h": frames, "mu": frames, "mask": frames},
    )
    noise_axes = {0: "b", 1: "t"} if decoder == "vae" else {1: "b", 2: "t"}
    noise = torch.randn(model.noise_shape(1, h.shape[1]))
    dec_session = _export(
        dec,
        (h, mu, mask, noise),
        ["h", "mu", "mask", "noise"],
        ["mel"],
        {"h": frames, "mu": frames, "mask": frames, "noise": noise_axes},
    )
    # A different batch size and length than the traced one, with padding.
    ids2, lengths2 = torch.randint(3, 20, (2, 11)), torch.tensor([11, 6])
    ids2[1, 6:] = 0
    h2, mu2, mask2 = enc_session.run(None, {"ids": ids2.numpy(), "lengths": lengths2.numpy()})
    with torch.no_grad():
        th, tmu, tmask = enc(ids2, lengths2)
    np.testing.assert_array_equal(mask2, tmask.numpy())
    np.testing.assert_allclose(h2, th.numpy(), atol=1e-4)
    noise2 = torch.randn(model.noise_shape(2, h2.shape[1]))
    (mel,) = dec_session.run(None, {"h": h2, "mu": mu2, "mask": mask2, "noise": noise2.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(mel, dec(th, tmu, tmask, noise2).numpy(), atol=1e-4)
