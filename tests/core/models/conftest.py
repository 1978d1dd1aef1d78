"""Shared fixtures: a 4-utterance espeak corpus and tiny model settings that train in seconds."""

from __future__ import annotations

import pytest
import torch

from tests.factories import speech

TEXTS = ["Call me back.", "The red door.", "Seven green apples.", "Water the plants."]

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
