"""``hf-vits``: a tiny randomly initialized transformers VITS model, saved and loaded offline.

Nothing is downloaded: the test writes its own vocabulary and model with ``save_pretrained``.
"""

from __future__ import annotations

import json
import pickle
import sys

import fsspec
import numpy as np
import pytest

pytest.importorskip("transformers")

from audio_synth_core.errors import GenerationError, PluginError, UnknownVoiceError
from audio_synth_core.generators.base import SynthesisRequest
from audio_synth_core.generators.hf import HFVitsGenerator, load_vits

# Small enough to build, save and run in well under a second on one CPU core.
TINY_VITS = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "ffn_dim": 32,
    "flow_size": 16,
    "spectrogram_bins": 17,
    "upsample_initial_channel": 16,
    "upsample_rates": [4, 4],
    "upsample_kernel_sizes": [8, 8],
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "depth_separable_num_layers": 1,
    "duration_predictor_filter_channels": 16,
    "duration_predictor_num_flows": 1,
    "duration_predictor_flow_bins": 4,
    "prior_encoder_num_flows": 1,
    "prior_encoder_num_wavenet_layers": 1,
    "posterior_encoder_num_wavenet_layers": 1,
    "sampling_rate": 16000,
}


def _save_model(folder, num_speakers: int = 1) -> None:
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    vocab = {"<pad>": 0, **{c: i + 1 for i, c in enumerate(" abcdefghijklmnopqrstuvwxyz'")}}
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = VitsTokenizer(str(folder / "vocab.json"), language="eng", phonemize=False)
    extra = {"num_speakers": num_speakers, "speaker_embedding_size": 8} if num_speakers > 1 else {}
    config = VitsConfig(vocab_size=len(vocab), **TINY_VITS, **extra)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = VitsModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vits") / "model"
    _save_model(folder)
    return folder


def _requests(seed: int = 0) -> list[SynthesisRequest]:
    return [
        SynthesisRequest("Call me back.", "default", seed=seed),
        SynthesisRequest("Seven green apples on the table.", "default", seed=seed + 1),
    ]


def test_generates_seeded_float32_audio(model_dir) -> None:
    gen = HFVitsGenerator(model_url=str(model_dir), device="cpu")
    assert gen.sample_rate_hz == 16000 and gen.version.startswith("sha256:")
    (voice,) = gen.voices()
    assert voice.name == "default" and voice.language == "eng"
    json.dumps(gen.describe())
    out = gen.generate(_requests())
    for audio in out:
        assert isinstance(audio, np.ndarray) and audio.dtype == np.float32 and audio.ndim == 1
        assert len(audio) > 0 and np.abs(audio).max() <= 1.0 and np.isfinite(audio).all()
    # Deterministic per request: again, alone, and after a pickle round trip.
    for a, b in zip(gen.generate(_requests()), out, strict=True):
        np.testing.assert_array_equal(a, b)
    (alone,) = gen.generate([_requests()[1]])
    np.testing.assert_array_equal(alone, out[1])
    clone = pickle.loads(pickle.dumps(gen))
    np.testing.assert_array_equal(clone.generate(_requests())[0], out[0])
    # Another seed draws other noise (durations and prior).
    other = gen.generate(_requests(seed=50))[0]
    assert len(other) != len(out[0]) or not np.array_equal(other, out[0])


def test_errors_are_per_request(model_dir) -> None:
    gen = HFVitsGenerator(model_url=str(model_dir), device="cpu")
    out = gen.generate(
        [
            SynthesisRequest("", "default"),
            SynthesisRequest("Call me back.", "default"),
            SynthesisRequest("1234 !!", "default"),  # nothing in the vocabulary
            SynthesisRequest("Call me back.", "speaker-3"),
        ]
    )
    assert isinstance(out[0], GenerationError) and isinstance(out[2], GenerationError)
    assert isinstance(out[3], UnknownVoiceError)
    assert isinstance(out[1], np.ndarray) and len(out[1]) > 0


def test_noise_free_batches_and_memory_url(model_dir, tmp_path) -> None:
    fs = fsspec.filesystem("memory")
    url = f"memory://models/vits-{tmp_path.name}"
    for file in model_dir.iterdir():
        fs.pipe(f"{url}/{file.name}", file.read_bytes())
    params = {"device": "cpu", "noise_scale": 0.0, "noise_scale_duration": 0.0, "batch_size": 4}
    remote = HFVitsGenerator(model_url=url, **params)
    local = HFVitsGenerator(model_url=str(model_dir), **params)
    assert remote.version == local.version
    a, b = remote.generate(_requests(seed=1)), local.generate(_requests(seed=2))
    for x, y in zip(a, b, strict=True):  # no noise: the seed does not matter
        np.testing.assert_array_equal(x, y)
    assert (tmp_path / "cache").is_dir()


def test_multi_speaker_voices(tmp_path) -> None:
    _save_model(tmp_path / "multi", num_speakers=3)
    gen = HFVitsGenerator(model_url=str(tmp_path / "multi"), device="cpu", language="en")
    assert [v.name for v in gen.voices()] == ["speaker-0", "speaker-1", "speaker-2"]
    out = gen.generate(
        [SynthesisRequest("Call me back.", "speaker-0"), SynthesisRequest("Call me.", "speaker-2")]
    )
    assert all(isinstance(x, np.ndarray) and len(x) > 0 for x in out)


def test_checks_its_parameters() -> None:
    with pytest.raises(ValueError, match="unknown parameter.*'temperature'.*generator 'hf-vits'"):
        HFVitsGenerator(model_url="x", temperature=1.0)
    with pytest.raises(ValueError, match="device"):
        HFVitsGenerator(model_url="x", device="tpu")
    with pytest.raises(ValueError, match="speaking_rate"):
        HFVitsGenerator(model_url="x", speaking_rate=0)
    with pytest.raises(ValueError, match="noise_scale"):
        HFVitsGenerator(model_url="x", noise_scale=-0.1)
    with pytest.raises(ValueError, match="batch_size"):
        HFVitsGenerator(model_url="x", batch_size=True)


def test_missing_transformers_names_the_extra(monkeypatch, tmp_path) -> None:
    # None in sys.modules makes `import transformers` raise ImportError, as when not installed.
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(PluginError, match=r"pip install 'audio-synth\[hf\]'"):
        load_vits(str(tmp_path / "never-loaded"), "cpu")
