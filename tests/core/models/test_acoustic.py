from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.acoustic import (
    DECODERS,
    AcousticConfig,
    AcousticModel,
    expand,
    monotonic_alignment_search,
)
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.training import AcousticHParams, train_acoustic

from .conftest import TINY_ACOUSTIC


def _model(decoder: str, seed: int = 0) -> AcousticModel:
    torch.manual_seed(seed)
    model = AcousticModel(AcousticConfig(n_symbols=12, decoder=decoder, **TINY_ACOUSTIC)).eval()
    if decoder == "diffusion":
        # The output layer starts at zero (an untrained denoiser returns mu whatever the noise):
        # give it weights so the sampler's use of the noise shows.
        torch.nn.init.normal_(model.decoder.out[-1].weight, std=0.1)
    return model


def test_expand_matches_repeat_interleave() -> None:
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    durations = torch.tensor([[1, 0, 3], [2, 2, 0]])
    frames, mask = expand(hidden, durations)
    assert frames.shape == (2, 4, 2)
    assert mask.tolist() == [[True] * 4, [True] * 4]
    for b in range(2):
        want = torch.repeat_interleave(hidden[b], durations[b], dim=0)
        assert torch.equal(frames[b, : len(want)], want)
    padded, mask = expand(hidden, torch.tensor([[1, 1, 1], [1, 0, 0]]))
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert torch.equal(padded[1, 1:], torch.zeros(2, 2))


def test_mas_finds_the_planted_path_and_covers_every_frame() -> None:
    log_p = np.full((2, 3, 7), -10.0)
    for n, (a, b) in enumerate([(0, 2), (2, 3), (3, 7)]):
        log_p[0, n, a:b] = 0.0
    log_p[1] = np.random.default_rng(0).standard_normal((3, 7))
    durations = monotonic_alignment_search(log_p, np.array([3, 2]), np.array([7, 5]))
    assert durations[0].tolist() == [2, 1, 4]
    assert durations[1].sum() == 5 and durations[1, 2] == 0 and (durations[1, :2] >= 1).all()


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


@pytest.mark.parametrize("decoder", DECODERS)
def test_each_decoder_overfits_four_utterances(corpus, decoder: str) -> None:
    log: list[dict[str, float]] = []
    hp = AcousticHParams(
        decoder=decoder,
        steps=16,
        batch_size=4,
        warmup_steps=2,
        learning_rate=3e-3,
        log_every=1,
        sample_every=16,
        model_overrides=TINY_ACOUSTIC,
    )
    samples: list[tuple[int, np.ndarray, int]] = []
    result = train_acoustic(
        corpus,
        hp,
        torch.Generator().manual_seed(0),
        on_log=lambda step, m: log.append(m),
        on_sample=lambda step, audio, rate: samples.append((step, audio, rate)),
        frontend=Frontend("espeak", "en-us"),
        device="cpu",
    )
    assert result.step == 16 and len(log) == 16
    first = np.mean([m["loss"] for m in log[:3]])
    last = np.mean([m["loss"] for m in log[-3:]])
    assert last < 0.8 * first
    key = {"deterministic": "mel_l1", "vae": "mel_l1", "diffusion": "x0_mse"}[decoder]
    assert np.mean([m[key] for m in log[-3:]]) < np.mean([m[key] for m in log[:3]])
    assert result.metrics["utterances"] == 4
    ((step, audio, rate),) = samples
    assert step == 16 and rate == 22050 and audio.dtype == np.float32 and len(audio) % 256 == 0
