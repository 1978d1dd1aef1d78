from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_synth_core.audio import resample
from audio_synth_core.models.features import MelConfig, f0_frames, griffin_lim, log_mel
from audio_synth_core.models.metrics import copy_synthesis_metrics


def test_log_mel_frames_and_griffin_lim_length(corpus) -> None:
    _, audio, rate = corpus[0]
    config = MelConfig()
    assert rate == config.sample_rate_hz
    mel = log_mel(audio, config)
    assert mel.shape == (80, len(audio) // 256)
    wav = griffin_lim(mel, config, n_iter=16)
    assert wav.shape == (mel.shape[1] * 256,)
    assert torch.isfinite(wav).all()
    batch = griffin_lim(torch.stack([mel, mel]), config, n_iter=4)
    assert batch.shape == (2, mel.shape[1] * 256)


def test_griffin_lim_copy_synthesis_is_close(corpus) -> None:
    _, audio, rate = corpus[1]
    audio = audio[: len(audio) // 256 * 256]
    rebuilt = griffin_lim(log_mel(audio), n_iter=32).numpy()
    m = copy_synthesis_metrics(audio, rebuilt, rate)
    assert m["log_mel_l1"] < 0.5
    assert m["stoi"] is None or m["stoi"] > 0.8
    # The same clip against itself: every distance is zero.
    same = copy_synthesis_metrics(audio, audio, rate)
    assert same["mcd_db"] == pytest.approx(0.0, abs=1e-4)
    assert same["lsd_db"] == pytest.approx(0.0, abs=1e-4)


def test_resample_changes_length_by_rate() -> None:
    audio = np.zeros(16000, dtype=np.float32)
    assert len(resample(audio, 16000, 22050)) == 22050
    assert resample(audio, 16000, 16000) is not None


def test_f0_frames_tracks_a_tone_and_rejects_noise() -> None:
    rate, n = 22050, 22050
    t = np.arange(n) / rate
    tone = (0.3 * np.sin(2 * np.pi * 180.0 * t) + 0.1 * np.sin(2 * np.pi * 360.0 * t)).astype(
        np.float32
    )
    f0 = f0_frames(tone)
    assert f0.shape == (n // 256,)
    voiced = f0 > 0
    assert voiced[4:-4].all()
    assert np.median(f0[voiced]) == pytest.approx(180.0, rel=0.01)
    noise = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1
    assert (f0_frames(noise) > 0).mean() < 0.1


def test_f0_frames_on_espeak_speech(corpus) -> None:
    _, audio, _ = corpus[0]
    f0 = f0_frames(audio)
    voiced = f0 > 0
    # espeak-ng's en-us voice speaks around 100 Hz, with unvoiced consonants and pauses.
    assert 0.3 < voiced.mean() < 0.95
    assert 70.0 < np.median(f0[voiced]) < 160.0
