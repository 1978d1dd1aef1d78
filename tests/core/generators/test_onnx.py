"""``OnnxGenerator`` end to end on tiny bundles (local folder and ``memory://`` URL): per-request
determinism, per-request errors, and its parameters."""

from __future__ import annotations

import json
import pickle

import fsspec
import numpy as np
import pytest

from audio_synth_core.errors import GenerationError, PluginError, UnknownVoiceError
from audio_synth_core.generators.base import SynthesisRequest
from audio_synth_core.generators.onnx import OnnxGenerator


def _requests(seed: int = 0) -> list[SynthesisRequest]:
    return [
        SynthesisRequest("Seven green apples, the red door.", "default", seed=seed),
        SynthesisRequest("Call me back.", "default", seed=seed + 1),
        SynthesisRequest("Water the plants.", "", "en-us", seed=seed + 2),
    ]


def test_generator_end_to_end(onnx_bundles) -> None:
    folder = onnx_bundles["vae"][1]
    gen = OnnxGenerator(model_url=str(folder), batch_size=2)
    assert gen.version.startswith("sha256:") and gen.sample_rate_hz == 22050
    (voice,) = gen.voices()
    assert voice.name == "default" and voice.language == "en-us"
    json.dumps(gen.describe())
    out = gen.generate(_requests())
    assert len(out) == 3
    for audio in out:
        assert isinstance(audio, np.ndarray) and audio.dtype == np.float32 and audio.ndim == 1
        assert len(audio) > 0 and len(audio) % 256 == 0 and np.abs(audio).max() <= 1.0
    assert len(out[0]) > len(out[1])
    # Picklable: only parameters travel; the sessions are per process.
    clone = pickle.loads(pickle.dumps(gen))
    for a, b in zip(clone.generate(_requests()), out, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("decoder", ["vae", "diffusion"])
def test_generator_is_deterministic_per_request(onnx_bundles, decoder: str) -> None:
    gen = OnnxGenerator(model_url=str(onnx_bundles[decoder][1]), batch_size=4)
    batch = gen.generate(_requests())
    again = gen.generate(_requests())
    for a, b in zip(batch, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # The same request alone, or with other neighbours, gives the same clip (to float noise; the
    # vocoder's harmonic phase integrates F0 over the clip, which turns 1e-7 into ~4e-5).
    for i, request in enumerate(_requests()):
        (alone,) = gen.generate([request])
        np.testing.assert_allclose(alone, batch[i], rtol=0, atol=2e-4)
    reordered = gen.generate([_requests()[2], SynthesisRequest("Hi.", "default"), _requests()[0]])
    np.testing.assert_allclose(reordered[0], batch[2], rtol=0, atol=2e-4)
    np.testing.assert_allclose(reordered[2], batch[0], rtol=0, atol=2e-4)
    # Another seed, other noise.
    other = gen.generate(_requests(seed=100))
    assert len(other[1]) == len(batch[1]) and not np.allclose(other[1], batch[1])


def test_generator_reports_errors_per_request(onnx_bundles) -> None:
    gen = OnnxGenerator(model_url=str(onnx_bundles["vae"][1]))
    out = gen.generate(
        [
            SynthesisRequest("", "default"),
            SynthesisRequest("Call me back.", "default"),
            SynthesisRequest("   ", "default"),
            SynthesisRequest("Call me back.", "somebody"),
            SynthesisRequest("Call me back.", "", "de"),
        ]
    )
    assert isinstance(out[0], GenerationError) and isinstance(out[2], GenerationError)
    assert isinstance(out[3], UnknownVoiceError) and isinstance(out[4], UnknownVoiceError)
    assert isinstance(out[1], np.ndarray) and len(out[1]) > 0


def test_generator_from_memory_url(onnx_bundles, tmp_path) -> None:
    folder = onnx_bundles["vae"][1]
    fs = fsspec.filesystem("memory")
    url = f"memory://models/onnx-{tmp_path.name}"
    for file in folder.iterdir():
        fs.pipe(f"{url}/{file.name}", file.read_bytes())
    remote = OnnxGenerator(model_url=url)
    local = OnnxGenerator(model_url=str(folder))
    assert remote.version == local.version
    for a, b in zip(remote.generate(_requests()), local.generate(_requests()), strict=True):
        np.testing.assert_array_equal(a, b)
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and (cached[0] / "tts.json").is_file()


def test_generator_checks_its_parameters(onnx_bundles) -> None:
    with pytest.raises(ValueError, match="unknown parameter.*'colour'.*generator 'onnx'"):
        OnnxGenerator(model_url="x", colour="blue")
    with pytest.raises(ValueError, match="model_url"):
        OnnxGenerator()
    with pytest.raises(ValueError, match="batch_size"):
        OnnxGenerator(model_url="x", batch_size=0)
    with pytest.raises(ValueError, match="providers"):
        OnnxGenerator(model_url="x", providers="CPUExecutionProvider")
    with pytest.raises(ValueError, match="length_scale"):
        OnnxGenerator(model_url="x", length_scale=0)
    with pytest.raises(PluginError, match="provider"):
        OnnxGenerator(model_url=str(onnx_bundles["vae"][1]), providers=["NoSuchProvider"]).voices()
    with pytest.raises(PluginError, match="does not exist"):
        OnnxGenerator(model_url="/nonexistent/bundle").voices()
