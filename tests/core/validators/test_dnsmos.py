"""DnsmosValidator on espeak speech with white noise at falling SNRs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from audio_synth_core.validators import dnsmos
from audio_synth_core.validators.base import Clip
from audio_synth_core.validators.dnsmos import DnsmosValidator
from tests import factories as f

SNRS = (None, 30, 20, 10, 0)  # None: clean


@pytest.fixture(scope="module")
def validator() -> DnsmosValidator:
    v = DnsmosValidator()
    v.prepare(None)
    return v


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, int]]:
    return [f.speech(f.SENTENCES[0]), f.speech(f.SENTENCES[3], "en-us+f3")]


@pytest.fixture(scope="module")
def scores(validator, clips) -> dict[int | None, list[dict]]:
    """Metrics of every clip at every SNR (about 0.3 s of CPU each)."""
    return {
        snr: [
            validator.measure(Clip("x", a if snr is None else f.add_noise(a, snr, seed=1), r))
            for a, r in clips
        ]
        for snr in SNRS
    }


def mean(scores, snr, key):
    return float(np.mean([m[key] for m in scores[snr]]))


def test_fields_and_ranges(validator, scores):
    for metrics in scores[None]:
        assert set(metrics) == {fl.name for fl in validator.fields}
        assert all(1.0 <= v <= 5.0 for v in metrics.values())


def test_clean_speech_passes_and_0db_fails(validator, scores):
    for metrics in scores[None]:
        assert validator.check(metrics) == []
    for metrics in scores[0]:
        (result,) = validator.check(metrics)
        assert result.check == "min_ovrl" and "below minimum 2.1" in result.message


def test_ovrl_and_bak_fall_with_snr(scores):
    ovrl = [mean(scores, snr, "mos_ovrl") for snr in SNRS]
    bak = [mean(scores, snr, "mos_bak") for snr in SNRS]
    # From 30 dB down every step loses quality; clean and 30 dB are within the model's noise.
    assert ovrl[1:] == sorted(ovrl[1:], reverse=True) and len(set(ovrl[1:])) == 4
    assert bak[1:] == sorted(bak[1:], reverse=True) and len(set(bak[1:])) == 4
    assert ovrl[0] >= ovrl[1] - 0.1
    assert bak[0] > bak[1]
    assert ovrl[0] - ovrl[-1] > 0.8


def test_reference_windows_match_speechmos(clips):
    """windows="reference": our single-threaded, batched sessions reproduce speechmos exactly."""
    from speechmos import dnsmos as reference

    audio, rate = clips[0]
    ours = DnsmosValidator(windows="reference").measure(Clip("x", audio, rate))
    theirs = reference.run(np.clip(dnsmos.resample(audio, rate, 16000), -1, 1), 16000)
    assert ours["mos_ovrl"] == pytest.approx(float(theirs["ovrl_mos"]), abs=1e-5)
    assert ours["mos_sig"] == pytest.approx(float(theirs["sig_mos"]), abs=1e-5)
    assert ours["mos_bak"] == pytest.approx(float(theirs["bak_mos"]), abs=1e-5)
    assert ours["mos_p808"] == pytest.approx(float(theirs["p808_mos"]), abs=1e-5)


def test_sessions_are_cached_and_single_threaded(validator):
    scorer = dnsmos._scorer()
    assert scorer is dnsmos._scorer()
    for session in (scorer.p835, scorer.p808):
        options = session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.inter_op_num_threads == 1


@pytest.mark.parametrize(
    "audio",
    [np.zeros(0, np.float32), f.silence(1.0), np.array([np.nan] * 10, np.float32)],
    ids=["empty", "digital_silence", "nan"],
)
def test_unmeasurable_audio(validator, audio):
    metrics = validator.measure(Clip("x", audio, 16000))
    assert set(metrics.values()) == {None}
    (result,) = validator.check(metrics)
    assert result.value is None and "undefined" in result.message


def test_params():
    with pytest.raises(ValueError, match="'min_mos'"):
        DnsmosValidator(min_mos=3)
    with pytest.raises(ValueError, match="min_ovrl"):
        DnsmosValidator(min_ovrl=7)
    v = DnsmosValidator(min_ovrl=3)
    assert pickle.loads(pickle.dumps(v)).params == {
        "min_ovrl": 3.0,
        "hop_s": 1.0,
        "windows": "distinct",
        "models": ["p808", "p835"],
    }
    with pytest.raises(ValueError, match="models"):
        DnsmosValidator(models=["p999"])
    with pytest.raises(ValueError, match="models"):
        DnsmosValidator(models=[])


def test_short_clip_scores_its_first_window_only(validator, clips):
    """Under 9.01 s the default scores one tiled window: the reference at a 9.01 s hop, exactly."""
    one_window = DnsmosValidator(windows="reference", hop_s=9.01)
    every_window = DnsmosValidator(windows="reference")
    audio, rate = clips[0]
    # 3.5 s tiles to 14 s: the reference scores 5 shifted windows, the default the first.
    clip = Clip("x", np.tile(audio, 2)[: int(3.5 * rate)], rate)
    ours = validator.measure(clip)
    assert ours == pytest.approx(one_window.measure(clip), abs=1e-5)
    assert ours != pytest.approx(every_window.measure(clip), abs=1e-5)
    for audio, rate in clips:
        clip = Clip("x", audio, rate)
        assert validator.measure(clip) == pytest.approx(one_window.measure(clip), abs=1e-5)


def test_long_clip_matches_reference(validator, clips):
    audio, rate = clips[0]
    long = np.tile(audio, int(np.ceil(11.0 * rate / audio.size)))[: int(11.0 * rate)]
    reference = DnsmosValidator(windows="reference")
    clip = Clip("x", long, rate)
    assert validator.measure(clip) == pytest.approx(reference.measure(clip), abs=1e-5)


def test_models_run_only_what_is_asked(validator, clips):
    audio, rate = clips[0]
    clip = Clip("x", audio, rate)
    both = validator.measure(clip)
    p808 = DnsmosValidator(models=["p808"])
    only_p808 = p808.measure(clip)
    assert only_p808["mos_p808"] == pytest.approx(both["mos_p808"], abs=1e-5)
    assert only_p808["mos_ovrl"] is None and only_p808["mos_sig"] is None
    assert p808.check(only_p808) == []  # no OVRL measured: min_ovrl checks nothing
    only_p835 = DnsmosValidator(models=["p835"]).measure(clip)
    assert only_p835["mos_p808"] is None
    assert only_p835["mos_ovrl"] == pytest.approx(both["mos_ovrl"], abs=1e-5)
