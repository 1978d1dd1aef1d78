from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.acoustic import AcousticConfig, AcousticModel
from audio_synth_core.models.features import MelConfig
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.tts import TTSModel
from audio_synth_core.models.vocoder import HiFiGAN, VocoderConfig

from .conftest import TEXTS, TINY_ACOUSTIC, TINY_VOCODER


@pytest.fixture(scope="module")
def tts() -> TTSModel:
    torch.manual_seed(0)
    frontend = Frontend("espeak", "en-us").fit(TEXTS)
    acoustic = AcousticModel(
        AcousticConfig(n_symbols=len(frontend.vocabulary), decoder="vae", **TINY_ACOUSTIC)
    )
    vocoder = HiFiGAN(VocoderConfig.sized("tiny", **TINY_VOCODER))
    return TTSModel(frontend, acoustic, MelConfig(), vocoder, "hifigan")


def test_batched_synthesis_is_seeded_and_well_formed(tts: TTSModel) -> None:
    texts = ["Call me back.", "Seven green apples, the red door."]
    a = tts.synthesize(texts, seed=5)
    b = tts.synthesize(texts, seed=5)
    assert len(a) == 2
    for x, y in zip(a, b, strict=True):
        assert x.dtype == np.float32 and x.ndim == 1 and len(x) % 256 == 0
        assert np.abs(x).max() <= 1.0
        np.testing.assert_array_equal(x, y)
    assert len(a[1]) > len(a[0])  # padded batch, per-item lengths
    assert not np.array_equal(tts.synthesize(texts, seed=6)[0], a[0])
    assert tts.synthesize([]) == []


def test_griffin_lim_choice(tts: TTSModel) -> None:
    gl = tts.with_vocoder("griffinlim")
    (audio,) = gl.synthesize(["Water the plants."], seed=1)
    _, frames = gl.mels(["Water the plants."], seed=1)
    assert len(audio) == int(frames[0]) * 256
    with pytest.raises(ConfigError):
        tts.with_vocoder("wavenet")


def test_save_load_round_trip(tts: TTSModel, tmp_path) -> None:
    tts.save(tmp_path / "model")
    loaded = TTSModel.load(tmp_path / "model")
    assert loaded.config() == tts.config()
    want = tts.synthesize(TEXTS, seed=2)
    got = loaded.synthesize(TEXTS, seed=2)
    for x, y in zip(want, got, strict=True):
        np.testing.assert_array_equal(x, y)
