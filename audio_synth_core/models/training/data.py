"""Training data in memory: (text, audio, rate) examples turned into log-mel utterances (acoustic
model) or mel/waveform/F0 clips (vocoder), padded batches, and the shuffled data order that
checkpoints save.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from audio_synth_core.audio import resample
from audio_synth_core.models.features import LogMel, MelConfig, f0_frames
from audio_synth_core.models.frontend import Frontend

# (text, float32 mono audio, sample rate in Hz)
Example = tuple[str, np.ndarray, int]


class DataOrder:
    """Epoch-wise shuffled indices drawn from the training generator; saved in checkpoints."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n, self.generator = n, generator
        self.perm = torch.randperm(n, generator=generator)
        self.cursor = 0

    def take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if self.cursor == self.n:
                self.perm = torch.randperm(self.n, generator=self.generator)
                self.cursor = 0
            take = min(k - len(out), self.n - self.cursor)
            out.extend(self.perm[self.cursor : self.cursor + take].tolist())
            self.cursor += take
        return out

    def state(self) -> dict[str, Any]:
        return {"perm": self.perm, "cursor": self.cursor}

    def restore(self, state: dict[str, Any]) -> None:
        self.perm, self.cursor = state["perm"], state["cursor"]


def audio_of(item: Any) -> tuple[np.ndarray, int]:
    """(text, audio, rate) or (audio, rate) -> (audio, rate)."""
    if len(item) == 3:
        return np.asarray(item[1], dtype=np.float32), int(item[2])
    return np.asarray(item[0], dtype=np.float32), int(item[1])


@dataclass
class Utterance:
    """One acoustic training example: symbol ids and its log-mel."""

    ids: torch.Tensor
    mel: torch.Tensor  # [n_mels, frames]


def prepare_acoustic(
    dataset: Iterable[Example], frontend: Frontend, mel_config: MelConfig, max_frames: int
) -> tuple[list[Utterance], int]:
    """Utterances at the mel's sample rate, and how many were left out (fewer frames than
    symbols, or more than ``max_frames``)."""
    analyse = LogMel(mel_config)
    out: list[Utterance] = []
    dropped = 0
    for text, audio, rate in dataset:
        audio = resample(np.asarray(audio, dtype=np.float32), int(rate), mel_config.sample_rate_hz)
        with torch.no_grad():
            mel = analyse(torch.from_numpy(audio))
        ids = torch.tensor(frontend.encode(text), dtype=torch.long)
        # MAS needs at least one frame per symbol.
        if mel.shape[1] < len(ids) or mel.shape[1] > max_frames:
            dropped += 1
            continue
        out.append(Utterance(ids, mel))
    return out, dropped


def acoustic_batch(
    items: Sequence[Utterance], floor: float, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Padded ids, lengths, log-mels (padded with ``log(floor)``) and frame counts on ``device``."""
    ids = torch.nn.utils.rnn.pad_sequence([u.ids for u in items], batch_first=True)
    lengths = torch.tensor([len(u.ids) for u in items])
    frames = torch.tensor([u.mel.shape[1] for u in items])
    mel = torch.full((len(items), items[0].mel.shape[0], int(frames.max())), math.log(floor))
    for i, u in enumerate(items):
        mel[i, :, : u.mel.shape[1]] = u.mel
    return ids.to(device), lengths.to(device), mel.to(device), frames.to(device)


def prepare_vocoder(
    dataset: Iterable[Any], mel_config: MelConfig, segment_frames: int, with_f0: bool
) -> tuple[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]], int]:
    """(log-mel, waveform, pYIN F0 or None) per clip of at least ``segment_frames`` frames, and
    how many clips were shorter."""
    analyse = LogMel(mel_config)
    hop = mel_config.hop_length
    out, dropped = [], 0
    for item in dataset:
        audio, rate = audio_of(item)
        audio = resample(audio, rate, mel_config.sample_rate_hz)
        frames = mel_config.frames(len(audio))
        if frames < segment_frames:
            dropped += 1
            continue
        wav = torch.from_numpy(audio[: frames * hop].copy())
        f0 = torch.from_numpy(f0_frames(audio, mel_config)) if with_f0 else None
        with torch.no_grad():
            out.append((analyse(wav), wav, f0))
    return out, dropped
