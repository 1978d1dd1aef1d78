"""Shared fixtures: a 4-utterance espeak corpus, tiny model settings that train in seconds, and
ONNX bundles of tiny untrained models (``export_bundles``, also used by the generator tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.factories import speech

TEXTS = ["Call me back.", "The red door.", "Seven green apples.", "Water the plants."]
DECODERS = ("deterministic", "vae", "diffusion")

# Small enough for a few CPU training steps per test, big enough to exercise every layer.
TINY_ACOUSTIC = {
    "d_model": 32,
    "ffn_dim": 64,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "duration_filters": 32,
    "latent_dim": 4,
    "diffusion_channels": 32,
    "diffusion_layers": 2,
    "diffusion_steps": 20,
    "inference_steps": 4,
}
TINY_VOCODER = {
    "channels": 16,
    "disc_channels": 4,
    "resblock_kernels": [3],
    "resblock_dilations": [[1, 3]],
}


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # The test machines are small and shared; one thread is also what makes timings stable.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def corpus() -> list[tuple[str, object, int]]:
    return [(t, *speech(t)) for t in TEXTS]


def tiny_tts(decoder: str, vocoder_kind: str = "hifigan") -> Any:
    """An untrained tiny ``TTSModel`` with an espeak frontend fitted on ``TEXTS``."""
    from audio_synth_core.models.acoustic import AcousticConfig, AcousticModel
    from audio_synth_core.models.features import MelConfig
    from audio_synth_core.models.frontend import Frontend
    from audio_synth_core.models.tts import TTSModel
    from audio_synth_core.models.vocoder import HiFiGAN, VocoderConfig

    torch.manual_seed(0)
    frontend = Frontend("espeak", "en-us").fit(TEXTS)
    model = AcousticModel(
        AcousticConfig(n_symbols=len(frontend.vocabulary), decoder=decoder, **TINY_ACOUSTIC)
    )
    if decoder == "diffusion":
        # Untrained, the zero-initialized output layer predicts 0: the noise would never matter.
        torch.nn.init.normal_(model.decoder.out[-1].weight, 0.0, 0.05)
    vocoder = HiFiGAN(VocoderConfig.sized("tiny", **TINY_VOCODER))
    return TTSModel(frontend, model, MelConfig(), vocoder, vocoder_kind)


def export_bundles(
    root: Path, decoders: tuple[str, ...] = DECODERS, int8: bool = True
) -> dict[str, tuple[Any, Path, Path | None]]:
    """Per decoder: the torch model, its fp32 bundle and (with ``int8``) its int8 bundle."""
    from audio_synth_core.models.onnx_export import export_onnx
    from audio_synth_core.models.quantization import quantize_int8

    out = {}
    for decoder in decoders:
        tts = tiny_tts(decoder)
        export_onnx(tts, root / decoder)
        quantized = None
        if int8:
            quantized = root / f"{decoder}-int8"
            quantize_int8(root / decoder, quantized)
        out[decoder] = (tts, root / decoder, quantized)
    return out


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, tuple[Any, Path, Path | None]]:
    return export_bundles(tmp_path_factory.mktemp("bundles"))
