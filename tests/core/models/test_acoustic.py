"""The acoustic model per decoder: shapes, seeded inference, and its config's checks."""

from __future__ import annotations

import pytest
import torch

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.acoustic import DECODERS, AcousticConfig, AcousticModel

from .conftest import TINY_ACOUSTIC


def _model(decoder: str, seed: int = 0) -> AcousticModel:
    torch.manual_seed(seed)
    model = AcousticModel(AcousticConfig(n_symbols=12, decoder=decoder, **TINY_ACOUSTIC)).eval()
    if decoder == "diffusion":
        # The output layer starts at zero (an untrained denoiser returns mu whatever the noise):
        # give it weights so the sampler's use of the noise shows.
        torch.nn.init.normal_(model.decoder.out[-1].weight, std=0.1)
    return model


@pytest.mark.parametrize("decoder", DECODERS)
def test_inference_shapes_and_seeded_determinism(decoder: str) -> None:
    model = _model(decoder)
    ids = torch.tensor([[2, 5, 6, 7, 2], [2, 8, 9, 2, 0]])
    lengths = torch.tensor([5, 4])
    mel_a, frames_a = model.infer(ids, lengths, torch.Generator().manual_seed(3))
    mel_b, frames_b = model.infer(ids, lengths, torch.Generator().manual_seed(3))
    assert mel_a.shape == (2, 80, int(frames_a.max()))
    assert torch.equal(mel_a, mel_b) and torch.equal(frames_a, frames_b)
    assert (frames_a >= lengths).all()  # at least one frame per symbol
    mel_c, _ = model.infer(ids, lengths, torch.Generator().manual_seed(4))
    assert torch.equal(mel_a, mel_c) == (decoder == "deterministic")


def test_config_rejects_unknown_settings() -> None:
    with pytest.raises(ConfigError):
        AcousticConfig(n_symbols=5, decoder="autoregressive")
    with pytest.raises(ConfigError):
        AcousticConfig.sized("huge", 5)
    with pytest.raises(ConfigError):
        AcousticConfig.from_dict({"n_symbols": 5, "depth": 3})
    assert AcousticConfig.sized("base", 5).d_model > AcousticConfig.sized("tiny", 5).d_model
