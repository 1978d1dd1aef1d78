"""Augmentation: parameters drawn from the seed and recorded, applied exactly, each effect
measurably doing what its parameters say."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from audio_synth_core.audio import encode
from audio_synth_core.dataset.augment import (
    AugmentationSpec,
    CodecSpec,
    GainSpec,
    NoiseSpec,
    PitchSpec,
    ReverbSpec,
    SpeedSpec,
    apply_augmentation,
    augmented_id,
    plan_augmentation,
    preflight_augmentation,
)
from audio_synth_core.errors import ConfigError
from tests.factories import SENTENCES, speech, tone, white_noise

EVERYTHING = AugmentationSpec(
    copies=4,
    speed=SpeedSpec(p=0.5),
    pitch=PitchSpec(p=0.5),
    reverb=ReverbSpec(p=0.5, bank_size=4),
    noise=NoiseSpec(p=0.5, types=("white", "pink", "brown", "babble")),
    codec=CodecSpec(p=0.5),
    gain=GainSpec(p=0.5),
)


@cache
def _speech() -> tuple[np.ndarray, int]:
    return speech(SENTENCES[0])


def _only(effect: str, **fields) -> dict:
    """Params with exactly one effect and fixed values (a collapsed range)."""
    return {"version": 1, "copy": 0, "effects": [{"effect": effect, **fields}]}


def _band_db(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(10 * np.log10(spectrum[(freqs >= lo) & (freqs < hi)].sum() + 1e-20))


def _power_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2)))


def test_same_seed_same_params_and_json_roundtrip():
    a = [plan_augmentation(EVERYTHING, "item-1", c, seed=7) for c in range(4)]
    b = [plan_augmentation(EVERYTHING, "item-1", c, seed=7) for c in range(4)]
    assert a == b
    assert [json.loads(json.dumps(p)) for p in a] == a
    assert len({json.dumps(p, sort_keys=True) for p in a}) == 4  # copies differ
    assert plan_augmentation(EVERYTHING, "item-1", 0, seed=8) != a[0]
    assert plan_augmentation(EVERYTHING, "item-2", 0, seed=7) != a[0]
    assert all(p["effects"] for p in a)  # at_least_one: never a clean duplicate
    for p in a:
        names = [e["effect"] for e in p["effects"]]
        assert names == sorted(names, key=EVERYTHING.effects().index)  # chain order


def test_same_params_give_identical_flac_bytes():
    audio, rate = _speech()
    spec = AugmentationSpec(
        speed=SpeedSpec(),
        pitch=PitchSpec(),
        reverb=ReverbSpec(bank_size=2),
        noise=NoiseSpec(types=("pink",)),
        codec=CodecSpec(kinds=("opus",)),
        gain=GainSpec(db=(-3.0, -3.0)),
    )
    params = plan_augmentation(spec, "item-1", 0, seed=3)
    assert [e["effect"] for e in params["effects"]] == list(spec.effects())
    first = encode(apply_augmentation(audio, rate, params), rate)
    second = encode(apply_augmentation(audio.copy(), rate, json.loads(json.dumps(params))), rate)
    assert first == second
    assert first != encode(audio, rate)
    other = plan_augmentation(spec, "item-1", 0, seed=4)
    assert encode(apply_augmentation(audio, rate, other), rate) != first


_OTHER_PROCESS = """
import hashlib, json, sys
import numpy as np
from audio_synth_core.audio import encode
from audio_synth_core.dataset.augment import apply_augmentation
from tests.factories import tone, white_noise
x = (tone(220.0, 1.0, 16000) + white_noise(1.0, 16000, -35.0, seed=2)).astype(np.float32)
out = apply_augmentation(x, 16000, json.loads(sys.argv[1]))
print(hashlib.sha256(encode(out, 16000)).hexdigest())
"""


def test_same_params_give_identical_bytes_in_another_process():
    """What a Dask worker elsewhere computes from the recorded params is the same file."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    spec = AugmentationSpec(
        speed=SpeedSpec(),
        pitch=PitchSpec(),
        reverb=ReverbSpec(bank_size=0, rt60_s=(0.8, 1.2)),
        noise=NoiseSpec(types=("babble",)),
        codec=CodecSpec(kinds=("mp3",)),
        gain=GainSpec(),
    )
    params = plan_augmentation(spec, "item", 0, seed=11)
    x = (tone(220.0, 1.0, 16000) + white_noise(1.0, 16000, -35.0, seed=2)).astype(np.float32)
    here = hashlib.sha256(encode(apply_augmentation(x, 16000, params), 16000)).hexdigest()
    root = Path(__file__).resolve().parents[3]
    there = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, json.dumps(params)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    assert there == here


def test_params_record_every_drawn_value():
    spec = AugmentationSpec(
        speed=SpeedSpec(),
        pitch=PitchSpec(),
        reverb=ReverbSpec(),
        noise=NoiseSpec(),
        codec=CodecSpec(kinds=("mp3",)),
        gain=GainSpec(),
    )
    effects = {e["effect"]: e for e in plan_augmentation(spec, "x", 0, seed=1)["effects"]}
    assert set(effects["speed"]) == {"effect", "factor", "mode"}
    assert set(effects["pitch"]) == {"effect", "semitones"}
    assert {"rt60_s", "room_dim_m", "absorption", "max_order", "source_m", "mic_m"} <= set(
        effects["reverb"]
    )
    assert set(effects["noise"]) == {"effect", "type", "snr_db", "seed"}
    assert effects["codec"]["kind"] == "mp3" and effects["codec"]["bitrate_kbps"] in (16, 32, 64)
    assert -6.0 <= effects["gain"]["db"] <= 6.0
    assert 0.2 <= effects["reverb"]["rt60_s"] <= 0.8


def test_one_effect_settings_do_not_change_another_effects_draws():
    a = AugmentationSpec(noise=NoiseSpec(), gain=GainSpec(db=(-6.0, 6.0)))
    b = AugmentationSpec(noise=NoiseSpec(), gain=GainSpec(db=(-1.0, 0.0)))
    noise_a = plan_augmentation(a, "x", 0, seed=1)["effects"][0]
    noise_b = plan_augmentation(b, "x", 0, seed=1)["effects"][0]
    assert noise_a == noise_b


def test_at_least_one_effect_unless_disabled():
    rare = {"gain": GainSpec(p=0.05), "noise": NoiseSpec(p=0.05)}
    forced = AugmentationSpec(copies=20, **rare)
    assert all(plan_augmentation(forced, "x", c, 1)["effects"] for c in range(20))
    free = AugmentationSpec(copies=20, at_least_one=False, **rare)
    assert sum(not plan_augmentation(free, "x", c, 1)["effects"] for c in range(20)) > 10


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble"])
def test_noise_is_added_at_the_drawn_snr(kind):
    audio, rate = _speech()
    params = plan_augmentation(AugmentationSpec(noise=NoiseSpec(types=(kind,))), "n", 0, 5)
    (effect,) = params["effects"]
    assert effect["type"] == kind
    out = apply_augmentation(audio, rate, params)
    measured = _power_db(audio) - _power_db(out - audio)
    assert abs(measured - effect["snr_db"]) < 0.5


def test_noise_from_a_user_folder(tmp_path):
    import soundfile as sf

    folder = tmp_path / "noise"
    folder.mkdir()
    sf.write(folder / "hum.wav", tone(120.0, 2.0, 16000, -20.0), 16000)
    sf.write(folder / "hiss.flac", white_noise(0.5, 8000, -30.0, seed=3), 8000)
    (folder / "notes.txt").write_text("not audio")
    spec = AugmentationSpec(copies=6, noise=NoiseSpec(folder=str(folder), snr_db=(10.0, 10.0)))
    assert spec.noise is not None and spec.noise.types == ("folder",)
    preflight_augmentation(spec)
    audio, rate = _speech()
    seen = set()
    for copy in range(6):
        params = plan_augmentation(spec, "f", copy, 2)
        (effect,) = params["effects"]
        seen.add(effect["file"].rsplit("/", 1)[-1])
        out = apply_augmentation(audio, rate, params)
        assert abs(_power_db(audio) - _power_db(out - audio) - 10.0) < 0.5
        np.testing.assert_array_equal(out, apply_augmentation(audio, rate, params))
    assert seen == {"hum.wav", "hiss.flac"}
    (tmp_path / "empty").mkdir()
    empty = AugmentationSpec(noise=NoiseSpec(folder=str(tmp_path / "empty")))
    with pytest.raises(ConfigError, match="holds no audio"):
        preflight_augmentation(empty)


def test_reverb_lengthens_the_tail_more_for_longer_rt60():
    audio, rate = _speech()
    tails = {}
    for rt60 in (0.3, 0.9):
        spec = AugmentationSpec(reverb=ReverbSpec(rt60_s=(rt60, rt60), bank_size=1))
        params = plan_augmentation(spec, "r", 0, 1)
        out = apply_augmentation(audio, rate, params)
        assert len(out) > len(audio)
        # Energy in the 300 ms after the dry signal's end, relative to the whole output.
        tail = out[len(audio) : len(audio) + int(0.3 * rate)]
        tails[rt60] = _power_db(tail) - _power_db(out)
        assert _power_db(out[: len(audio)]) == pytest.approx(_power_db(audio), abs=0.01)
    assert tails[0.9] > tails[0.3] + 6.0


@pytest.mark.parametrize(
    ("rt60", "room"), [(0.3, (5.0, 4.0)), (0.9, (5.0, 4.0)), (1.5, (3.0, 3.0))]
)
def test_simulated_room_has_the_drawn_rt60(rt60, room):
    import pyroomacoustics as pra

    from audio_synth_core.dataset import rooms

    spec = ReverbSpec(rt60_s=(rt60, rt60), x_m=(room[0],) * 2, y_m=(room[1],) * 2, z_m=(2.5, 2.5))
    params = rooms.draw_room(np.random.default_rng(0), spec)
    measured = pra.experimental.measure_rt60(rooms.rir(params, 16000), 16000)
    # Sabine inversion + image sources run ~10-20 % long at short RT60 (0.36 s for 0.3 s).
    assert measured == pytest.approx(rt60, rel=0.25)


@pytest.mark.parametrize(
    ("kind", "kbps", "cutoff_hz"),
    [("mp3", 16, 8000.0), ("opus", 8, 8000.0), ("telephone", None, 4000.0)],
)
def test_codec_round_trip_removes_the_spectrum_above_its_band(kind, kbps, cutoff_hz):
    rate = 22050
    noise = white_noise(1.0, rate, -20.0, seed=1)
    out = apply_augmentation(noise, rate, _only("codec", kind=kind, bitrate_kbps=kbps))
    assert len(out) == len(noise)
    high_drop = _band_db(noise, rate, cutoff_hz, rate / 2) - _band_db(
        out, rate, cutoff_hz, rate / 2
    )
    assert high_drop > 20.0
    if kind == "telephone":  # and under 300 Hz
        assert _band_db(noise, rate, 20, 200) - _band_db(out, rate, 20, 200) > 10.0


def test_gain_in_db():
    audio, rate = _speech()
    out = apply_augmentation(audio * 0.25, rate, _only("gain", db=-4.5))
    assert _power_db(out) - _power_db(audio * 0.25) == pytest.approx(-4.5, abs=0.01)


@pytest.mark.parametrize("mode", ["resample", "tempo"])
def test_speed_changes_duration_by_the_factor(mode):
    audio, rate = _speech()
    out = apply_augmentation(audio, rate, _only("speed", factor=1.25, mode=mode))
    assert len(out) == pytest.approx(len(audio) / 1.25, rel=0.01)


def test_pitch_moves_a_tone_by_the_semitones():
    rate = 16000
    x = tone(400.0, 1.0, rate)
    out = apply_augmentation(x, rate, _only("pitch", semitones=3.0))
    assert len(out) == len(x)
    peak_hz = np.argmax(np.abs(np.fft.rfft(out[2000:-2000]))) * rate / len(out[2000:-2000])
    assert peak_hz == pytest.approx(400.0 * 2 ** (3 / 12), rel=0.02)


def test_augmented_id_depends_on_clean_id_and_params():
    p0 = plan_augmentation(EVERYTHING, "a", 0, 1)
    p1 = plan_augmentation(EVERYTHING, "a", 1, 1)
    assert augmented_id("a", p0) == augmented_id("a", json.loads(json.dumps(p0)))
    assert len({augmented_id("a", p0), augmented_id("a", p1), augmented_id("b", p0)}) == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"gain": {"db": [6, -6]}}, "greater than max"),
        ({"noise": {"types": ["folder"]}}, "needs noise.folder"),
        ({"noise": {"types": ["thunder"]}}, "types"),
        ({"copies": 2}, "no effect is configured"),
        ({"keep_clean": False, "copies": 0}, "no item would be kept"),
        ({"reverb": {"rt60_s": [0.05, 0.5], "x_m": [10, 20]}}, "too short"),
        ({"gain": {"db": [0, 1], "typo": 1}}, "typo"),
        ({"speed": {"factor": [0.1, 1.0]}}, "within"),
        ({"gain": {"p": 1.5}}, "less than or equal"),
    ],
)
def test_bad_specs_name_the_problem(fields, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        AugmentationSpec(**fields)


def test_bad_params_are_rejected():
    audio, rate = _speech()
    with pytest.raises(ConfigError, match="unknown augmentation effect"):
        apply_augmentation(audio, rate, _only("flanger"))
    with pytest.raises(ConfigError, match="version"):
        apply_augmentation(audio, rate, {"version": 99, "effects": []})
    with pytest.raises(ConfigError, match="copy 3"):
        plan_augmentation(AugmentationSpec(copies=2, gain=GainSpec()), "x", 3, 1)
