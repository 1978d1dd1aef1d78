"""Keyword spotting for the dataset-usefulness benchmark: the held-out flite test set, log-mel
features, a small CNN, its training with early stopping, and bootstrap accuracy intervals.

Twelve classes as in Google Speech Commands v1: ten command words, ``unknown`` (other words) and
``silence``. Every clip is fitted to one second at 16 kHz (centred, or the loudest second of a
longer clip), so the model sees the same framing in training and at test time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly
from torch import nn

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# Speech Commands' auxiliary words plus a few more; the test set's unknowns come from this list.
UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
)  # fmt: skip
LABELS = (*KEYWORDS, "unknown", "silence")
SAMPLE_RATE_HZ = 16_000
CLIP_SAMPLES = SAMPLE_RATE_HZ  # one second
FLITE_VOICES = ("awb", "kal", "rms", "slt")
# flite's duration_stretch per test utterance: speaking-rate variation the engine offers.
FLITE_STRETCHES = (0.8, 0.9, 1.0, 1.15, 1.3)
TEST_SNR_DB = 10.0
# Training-time shift: covers the centring error of noisy clips (their span is the whole clip).
MAX_SHIFT = 2400
Progress = Callable[[str], None]


def label_of(text: str) -> str:
    """Class of an utterance from its transcript: a keyword, ``silence`` (empty) or ``unknown``."""
    word = "".join(ch for ch in text.lower() if ch.isalpha() or ch.isspace()).strip()
    if word in KEYWORDS:
        return word
    return "silence" if word in ("", "silence") else "unknown"


def speech_span(audio: np.ndarray, floor_db: float = -35.0) -> tuple[int, int]:
    """First and last sample of the 10 ms frames within ``floor_db`` of the loudest frame: the
    word without the engine's leading/trailing silence (noisy audio keeps most of its length)."""
    n = audio.size // 160
    if n == 0:
        return 0, audio.size
    energy = (audio[: n * 160].astype(np.float64).reshape(n, 160) ** 2).mean(axis=1)
    active = np.flatnonzero(energy >= energy.max() * 10 ** (floor_db / 10))
    if energy.max() <= 0 or active.size == 0:
        return 0, audio.size
    return int(active[0]) * 160, min(audio.size, (int(active[-1]) + 1) * 160)


def fit_clip(audio: np.ndarray, rate_hz: int) -> np.ndarray:
    """Mono float32 at 16 kHz, exactly one second, the spoken part (``speech_span``) centred;
    a part longer than a second gives its loudest second. Engines differ in how much silence
    they put around a word: centring keeps that from becoming a cue for the classifier."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if rate_hz != SAMPLE_RATE_HZ:
        g = gcd(rate_hz, SAMPLE_RATE_HZ)
        audio = resample_poly(audio, SAMPLE_RATE_HZ // g, rate_hz // g).astype(np.float32)
    start, end = speech_span(audio)
    n = end - start
    if n <= CLIP_SAMPLES:
        # Centre the span, taking real context around it where the clip has some.
        left = start - (CLIP_SAMPLES - n) // 2
        out = np.zeros(CLIP_SAMPLES, np.float32)
        lo, hi = max(0, left), min(audio.size, left + CLIP_SAMPLES)
        out[lo - left : hi - left] = audio[lo:hi]
        return out
    energy = np.concatenate([[0.0], np.cumsum(audio[start:end].astype(np.float64) ** 2)])
    offset = start + int(np.argmax(energy[CLIP_SAMPLES:] - energy[:-CLIP_SAMPLES]))
    return audio[offset : offset + CLIP_SAMPLES].copy()


def colored_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white or pink (1/f power) noise."""
    white = rng.standard_normal(n)
    if kind == "pink":
        spectrum = np.fft.rfft(white)
        f = np.arange(spectrum.size, dtype=np.float64)
        f[0] = 1.0
        white = np.fft.irfft(spectrum / np.sqrt(f), n)
    elif kind != "white":
        raise ValueError(f"unknown noise kind {kind!r} (white, pink)")
    return white / np.sqrt(np.mean(white**2))


def mix_at_snr(clip: np.ndarray, power: float, kind: str, snr_db: float, seed: int) -> np.ndarray:
    """``clip`` plus noise whose power is ``power`` (the utterance's own, before padding) / SNR."""
    noise = colored_noise(kind, clip.size, np.random.default_rng(seed))
    mixed = clip + noise * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(mixed, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class TestSet:
    """Held-out clips, each (n, 16000) float32, with labels, voice and condition per row."""

    clips: np.ndarray
    labels: np.ndarray
    voices: np.ndarray
    conditions: np.ndarray  # "clean", "white@10dB", "pink@10dB"

    def subset(self, condition_prefix: str) -> TestSet:
        keep = np.char.startswith(self.conditions.astype(str), condition_prefix)
        return TestSet(
            self.clips[keep], self.labels[keep], self.voices[keep], self.conditions[keep]
        )


def _flite(word: str, voice: str, stretch: float, folder: Path) -> tuple[np.ndarray, int]:
    exe = shutil.which("flite")
    if exe is None:
        raise RuntimeError("flite is not installed (apt-get install flite)")
    path = folder / f"{word}-{voice}-{stretch:.2f}.wav"
    # An argument list, never a shell: the word is data.
    cmd = [exe, "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", word, "-o"]
    subprocess.run([*cmd, str(path)], check=True, timeout=60, capture_output=True)
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(rate)


def build_test_set(folder: Path, per_class: int = 20, seed: int = 0) -> TestSet:
    """The flite test set, deterministic: per keyword, ``per_class`` utterances cycling through
    the 4 voices and 5 speaking rates; ``per_class`` unknown words (voice/rate/word cycled);
    ``per_class`` silences (room tone at -65..-45 dBFS). Each clean clip is repeated with white
    and with pink noise at 10 dB SNR (speech power of the utterance; silences get the noise level
    of the median keyword utterance). WAVs are written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, np.ndarray, float]] = []  # label, voice, clip, power
    for label in (*KEYWORDS, "unknown"):
        for i in range(per_class):
            word = label if label != "unknown" else UNKNOWN_WORDS[i % 10]
            voice = FLITE_VOICES[i % len(FLITE_VOICES)]
            stretch = FLITE_STRETCHES[(i // len(FLITE_VOICES)) % len(FLITE_STRETCHES)]
            audio, rate = _flite(word, voice, stretch, folder)
            rows.append((label, voice, fit_clip(audio, rate), float(np.mean(audio**2))))
    rng = np.random.default_rng(seed)
    median_power = float(np.median([r[3] for r in rows if r[0] in KEYWORDS]))
    for i in range(per_class):
        level = 10 ** (rng.uniform(-65, -45) / 20)
        kind = ("white", "pink")[i % 2]
        clip = (colored_noise(kind, CLIP_SAMPLES, rng) * level).astype(np.float32)
        rows.append(("silence", "none", clip, median_power))
    clips, labels, voices, conds = [], [], [], []
    for cond in ("clean", f"white@{TEST_SNR_DB:g}dB", f"pink@{TEST_SNR_DB:g}dB"):
        for i, (label, voice, clip, power) in enumerate(rows):
            if cond != "clean":
                clip = mix_at_snr(clip, power, cond.split("@")[0], TEST_SNR_DB, seed * 100_003 + i)
            clips.append(clip)
            labels.append(label)
            voices.append(voice)
            conds.append(cond)
    return TestSet(np.stack(clips), np.array(labels), np.array(voices), np.array(conds))


def read_nemo_manifest(
    path: Path, limit_per_class: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fitted clips and labels of a NeMo JSON-lines manifest (``audio_filepath`` absolute or
    relative to the manifest's folder, ``text``); at most ``limit_per_class`` rows per label."""
    clips, labels, counts = [], [], dict.fromkeys(LABELS, 0)
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        label = label_of(row.get("text", ""))
        if limit_per_class is not None and counts[label] >= limit_per_class:
            continue
        audio_path = Path(row["audio_filepath"])
        if not audio_path.is_absolute():
            audio_path = Path(path).parent / audio_path
        audio, rate = sf.read(audio_path, dtype="float32", always_2d=True)
        clips.append(fit_clip(audio, rate))
        labels.append(label)
        counts[label] += 1
    if not clips:
        return np.zeros((0, CLIP_SAMPLES), np.float32), np.array([], dtype=str)
    return np.stack(clips), np.array(labels)


def silence_clips(n: int, seed: int) -> np.ndarray:
    """Room-tone clips for the ``silence`` class when a dataset has none: white/pink/brown-ish
    noise at -70..-35 dBFS, half of them digital silence with a faint hiss."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, CLIP_SAMPLES), np.float32)
    for i in range(n):
        kind = ("white", "pink")[i % 2]
        level = 10 ** (rng.uniform(-70, -35) / 20)
        out[i] = colored_noise(kind, CLIP_SAMPLES, rng) * level
    return out


class LogMel(nn.Module):
    """40-band log-mel, 30 ms windows every 10 ms; minus each clip's mean (gain invariance)."""

    def __init__(self) -> None:
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(
            SAMPLE_RATE_HZ, n_fft=512, win_length=480, hop_length=160, n_mels=40
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        feats = torch.log(self.mel(wave) + 1e-6)
        return (feats - feats.mean(dim=-1, keepdim=True)).unsqueeze(1)


class KwsNet(nn.Module):
    """Log-mel -> four conv blocks (16-32-64-64 channels) -> global average -> 12 logits."""

    def __init__(self, n_classes: int = len(LABELS)) -> None:
        super().__init__()
        self.features = LogMel()
        layers: list[nn.Module] = [nn.BatchNorm2d(1)]
        channels = [1, 16, 32, 64, 64]
        for i, (cin, cout) in enumerate(pairwise(channels)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
        self.head = nn.Linear(channels[-1], n_classes)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.features(wave)))


def _shifted(batch: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each clip moved by up to ``max_shift`` samples either way, zeros filling in."""
    padded = nn.functional.pad(batch, (max_shift, max_shift))
    offsets = torch.randint(0, 2 * max_shift + 1, (batch.shape[0],), generator=gen)
    idx = offsets[:, None] + torch.arange(batch.shape[1])[None, :]
    return torch.gather(padded, 1, idx)


def encode(labels: Iterable[str]) -> torch.Tensor:
    index = {label: i for i, label in enumerate(LABELS)}
    return torch.tensor([index[label] for label in labels], dtype=torch.long)


@torch.no_grad()
def predict(model: nn.Module, clips: np.ndarray, batch: int = 256) -> np.ndarray:
    """Predicted label per clip."""
    model.eval()
    out = [
        model(torch.from_numpy(clips[i : i + batch])).argmax(dim=1)
        for i in range(0, len(clips), batch)
    ]
    return np.array(LABELS)[torch.cat(out).numpy()] if out else np.array([], dtype=str)


def train_classifier(
    train: tuple[np.ndarray, np.ndarray],
    dev: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int = 20,
    patience: int = 5,
    seed: int = 0,
    progress: Progress = print,
) -> tuple[KwsNet, dict]:
    """Adam (cosine learning-rate decay) + cross-entropy with random time shifts (±150 ms); keeps the weights of the epoch with
    the best dev accuracy, stops after ``patience`` epochs without improvement."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = KwsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    # Cosine decay to zero over the epochs: late epochs refine instead of jumping around dev.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    x, y = torch.from_numpy(train[0]), encode(train[1])
    best_acc, best_state, best_epoch, history = -1.0, None, 0, []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            loss = nn.functional.cross_entropy(model(_shifted(x[idx], MAX_SHIFT, gen)), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        schedule.step()
        dev_acc = float(np.mean(predict(model, dev[0]) == dev[1])) if len(dev[0]) else 0.0
        history.append({"epoch": epoch, "loss": total / len(x), "dev_acc": dev_acc})
        progress(
            f"    epoch {epoch:2d}  loss {total / len(x):.3f}  dev acc {dev_acc:.3f}"
            f"  ({time.perf_counter() - started:.0f} s)"
        )
        if dev_acc > best_acc:
            best_acc, best_epoch = dev_acc, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, {"best_epoch": best_epoch, "dev_acc": best_acc, "history": history}


def bootstrap_accuracy(
    correct: np.ndarray, n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Accuracy and its percentile bootstrap interval, resampling test items with replacement."""
    correct = np.asarray(correct, dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = correct[rng.integers(0, correct.size, (n_boot, correct.size))].mean(axis=1)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [a, 1 - a])
    return float(correct.mean()), float(lo), float(hi)
