"""Register a model in a real MLflow store, then generate from it through the generator interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_synth_core.generators.base import SynthesisRequest, build_generator
from audio_synth_core.models.acoustic import AcousticConfig, AcousticModel
from audio_synth_core.models.features import MelConfig
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.registry import log_tts_model, set_alias
from audio_synth_core.models.tts import TTSModel
from audio_synth_core.models.vocoder import HiFiGAN, VocoderConfig

from .conftest import TEXTS, TINY_ACOUSTIC, TINY_VOCODER


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("models", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment("models")
    return uri


def tiny_tts(decoder: str) -> TTSModel:
    torch.manual_seed(0)
    frontend = Frontend("espeak", "en-us").fit(TEXTS)
    acoustic = AcousticModel(
        AcousticConfig(n_symbols=len(frontend.vocabulary), decoder=decoder, **TINY_ACOUSTIC)
    )
    return TTSModel(
        frontend, acoustic, MelConfig(), HiFiGAN(VocoderConfig.sized("tiny", **TINY_VOCODER))
    )


def test_register_alias_and_generate(mlflow_store):
    import mlflow

    tts = tiny_tts("vae")
    with mlflow.start_run():
        info = log_tts_model(tts, registered_model_name="tiny-tts")
    assert info.signature is not None and info.registered_model_version == 1
    set_alias("tiny-tts", "champion", 1)
    gen = build_generator("neural", {"model_uri": "models:/tiny-tts@champion", "device": "cpu"})
    assert gen.version == "tiny-tts/1"
    requests = [SynthesisRequest(t, "default", seed=i) for i, t in enumerate(TEXTS)] + [
        SynthesisRequest(" ", "default")
    ]
    out = gen.generate(requests)
    assert "empty text" in str(out[-1])
    expected = tts.synthesize([TEXTS[1]], seed=1)[0]
    np.testing.assert_allclose(out[1], expected, atol=1e-6)
    # Order independence: the same request alone gives the same audio.
    again = gen.generate([requests[1]])[0]
    np.testing.assert_array_equal(again, out[1])
    assert all(o.dtype == np.float32 and o.size > 0 for o in out[:-1])
