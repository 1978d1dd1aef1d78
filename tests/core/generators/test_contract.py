"""Every registered generator through the same checks: its parameters go through
``plugins.params.parse_params`` (an unknown or invalid key is a ValueError that names it), they are
JSON-serializable and survive pickling, and what it records for them (``describe()["params"]``,
hashed into item ids) stays exactly what it was.

Generators load their model lazily, so all of them are built here without model files; only espeak,
which needs none, also synthesizes.
"""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest

from audio_synth_core.generators.base import SynthesisRequest, build_generator
from audio_synth_core.plugins import registry as plugins

# The fewest parameters that build each generator (nothing is loaded until first use).
MINIMAL = {
    "espeak": {},
    "neural": {"model_uri": "/no/such/model"},
    "onnx": {"model_url": "/no/such/bundle"},
    "hf-vits": {"model_url": "/no/such/model"},
}
# Per generator: a known parameter and a value of the wrong type or out of its range.
INVALID = {
    "espeak": ("pitch", "high"),
    "neural": ("batch_size", "4"),
    "onnx": ("threads", 0),
    "hf-vits": ("device", "tpu"),
}
# Generators that synthesize without model files.
SELF_CONTAINED = ["espeak"]


def test_every_registered_generator_is_covered() -> None:
    assert set(plugins.available(plugins.GENERATORS)) == set(MINIMAL) == set(INVALID)


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_unknown_parameter_is_a_value_error_naming_it(name: str) -> None:
    with pytest.raises(
        ValueError, match=rf"unknown parameter\(s\) 'colour' for generator '{name}'"
    ):
        build_generator(name, {**MINIMAL[name], "colour": "blue"})


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_invalid_value_is_a_value_error_naming_the_key(name: str) -> None:
    key, value = INVALID[name]
    with pytest.raises(ValueError, match=rf"invalid parameter\(s\) for generator '{name}': {key}"):
        build_generator(name, {**MINIMAL[name], key: value})


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_params_are_json_and_survive_pickling(name: str) -> None:
    gen = build_generator(name, MINIMAL[name])
    assert json.loads(json.dumps(gen.params)) == gen.params
    clone = pickle.loads(pickle.dumps(gen))
    assert type(clone) is type(gen) and clone.params == gen.params


# (generator, parameters given, parameters recorded). Item ids hash the recorded dict as JSON, so
# an int must stay an int and a default that was recorded must stay recorded. The first row is the
# demo config's generator (configs/catalog-demo.yaml).
RECORDED = [
    (
        "espeak",
        {"rate_wpm": 165, "pitch": 50},
        {"rate_wpm": 165, "pitch": 50, "pitch_range": 50, "volume": 100, "word_gap_10ms": 0},
    ),
    (
        "espeak",
        {"rate_wpm": 175.0, "volume": 80},
        {"rate_wpm": 175, "pitch": 50, "pitch_range": 50, "volume": 80, "word_gap_10ms": 0},
    ),
    ("neural", {"model_uri": "/m"}, {"model_uri": "/m"}),
    (
        "neural",
        {"model_uri": "/m", "device": "cpu", "batch_size": 4},
        {"model_uri": "/m", "device": "cpu", "batch_size": 4},
    ),
    (
        "onnx",
        {"model_url": "/b", "length_scale": 1},
        {
            "model_url": "/b",
            "providers": ["CPUExecutionProvider"],
            "threads": 1,
            "batch_size": 8,
            "length_scale": 1,
            "storage_options": None,
        },
    ),
    (
        "hf-vits",
        {"model_url": "/m", "noise_scale": 0, "speaking_rate": 1.2},
        {
            "model_url": "/m",
            "device": "auto",
            "batch_size": 1,
            "noise_scale": 0,
            "noise_scale_duration": None,
            "speaking_rate": 1.2,
            "language": None,
            "storage_options": None,
        },
    ),
]


@pytest.mark.parametrize(("name", "given", "recorded"), RECORDED)
def test_recorded_params_are_unchanged(name: str, given: dict, recorded: dict) -> None:
    gen = build_generator(name, given)
    assert json.dumps(gen.params, sort_keys=True) == json.dumps(recorded, sort_keys=True)


@pytest.mark.parametrize("name", SELF_CONTAINED)
def test_describe_and_deterministic_audio(name: str) -> None:
    gen = build_generator(name, MINIMAL[name])
    described = json.loads(json.dumps(gen.describe()))
    assert described == {"name": name, "version": gen.version, "params": gen.params}
    voice = gen.voices()[0].name
    requests = [SynthesisRequest("Call me back.", voice, seed=3)]

    def digest(generator) -> str:
        (audio,) = generator.generate(requests)
        assert isinstance(audio, np.ndarray) and audio.dtype == np.float32
        return hashlib.sha256(audio.tobytes()).hexdigest()

    first = digest(gen)
    assert digest(gen) == first
    assert digest(pickle.loads(pickle.dumps(gen))) == first
