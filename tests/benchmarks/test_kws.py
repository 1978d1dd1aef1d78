"""The keyword-spotting parts of the dataset-usefulness benchmark on real espeak-ng speech:
clip framing, labels, the classifier learning, and the bootstrap interval."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from benchmarks import kws
from tests import factories as f


def test_labels_follow_the_transcript():
    assert kws.label_of("Yes.") == "yes"
    assert kws.label_of(" off ") == "off"
    assert kws.label_of("marvin") == "unknown"
    assert kws.label_of("") == "silence"
    assert len(kws.LABELS) == 12


def test_fit_clip_centres_the_word_in_one_second_at_16k():
    audio, rate = f.speech("yes", "en-us")  # 22050 Hz, the word at the start of the clip
    clip = kws.fit_clip(audio, rate)
    assert clip.shape == (kws.CLIP_SAMPLES,) and clip.dtype == np.float32
    start, end = kws.speech_span(clip)
    # centred: the silence before and after the word differ by less than a frame or two
    assert abs(start - (kws.CLIP_SAMPLES - end)) <= 2 * 160
    # a longer clip keeps its loudest second: the word, not the leading silence
    padded = np.concatenate([np.zeros(3 * rate, np.float32), audio])
    assert np.sum(kws.fit_clip(padded, rate) ** 2) == pytest.approx(np.sum(clip**2), rel=0.05)


def test_noise_is_mixed_at_the_asked_snr():
    clip = kws.fit_clip(*f.speech("stop", "en-us"))
    power = float(np.mean(clip**2))
    for kind in ("white", "pink"):
        noisy = kws.mix_at_snr(clip, power, kind, 10.0, seed=1)
        snr = 10 * np.log10(power / np.mean((noisy - clip) ** 2))
        assert snr == pytest.approx(10.0, abs=0.2)


def test_training_steps_lower_the_loss_on_real_speech():
    words = ["yes", "no", "up", "down"]
    clips = np.stack([kws.fit_clip(*f.speech(w, v)) for w in words for v in ("en-us", "en-us+f3")])
    labels = kws.encode([w for w in words for _ in range(2)])
    torch.manual_seed(0)
    model = kws.KwsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.from_numpy(clips)
    losses = []
    for _ in range(6):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
    assert set(kws.predict(model, clips)) <= set(kws.LABELS)


def test_bootstrap_interval_brackets_the_accuracy_and_narrows_with_more_items():
    rng = np.random.default_rng(0)
    small = rng.random(50) < 0.8
    large = rng.random(2000) < 0.8
    acc, lo, hi = kws.bootstrap_accuracy(small, n_boot=1000, seed=1)
    assert lo < acc < hi
    _, lo_l, hi_l = kws.bootstrap_accuracy(large, n_boot=1000, seed=1)
    assert hi_l - lo_l < (hi - lo) / 3
    assert kws.bootstrap_accuracy(small, seed=1) == (acc, lo, hi)  # seeded: reproducible


@pytest.mark.skipif(not shutil.which("flite"), reason="needs flite (apt-get install flite)")
def test_flite_test_set_is_deterministic_with_every_class_and_condition(tmp_path):
    first = kws.build_test_set(tmp_path / "a", per_class=2, seed=3)
    again = kws.build_test_set(tmp_path / "b", per_class=2, seed=3)
    assert first.clips.shape == (3 * 12 * 2, kws.CLIP_SAMPLES)
    assert np.array_equal(first.clips, again.clips)
    clean = first.subset("clean")
    assert sorted(set(clean.labels)) == sorted(kws.LABELS)
    assert set(clean.voices) == {"awb", "kal", "none"}  # 2 per class: the first two voices
    white = first.subset("white")
    speech = clean.labels != "silence"
    assert np.array_equal(white.labels, clean.labels)
    # the noise is 10 dB under the utterance's power, which padding to 1 s only lowers
    noise = white.clips[speech] - clean.clips[speech]
    snr = 10 * np.log10(np.mean(clean.clips[speech] ** 2, 1) / np.mean(noise**2, 1))
    assert np.all((snr > 3.0) & (snr < 10.5))
