"""Training loops for the acoustic model and the vocoder, with checkpoints and exact resume.

Both loops are plain functions: a dataset in, trained modules and final metrics out. Randomness comes
from the ``torch.Generator`` passed in (data order, segment offsets, diffusion/VAE noise); the
global RNG that dropout and weight initialization use is seeded from it inside
``torch.random.fork_rng``, so the caller's global state is left untouched.

Checkpoints go to ``checkpoint_url`` (any fsspec URL) every ``checkpoint_every`` steps as
``ckpt-00001234.pt``: model, optimizer, scheduler, step, data order and every RNG state. The bytes are
made in memory and written in one go (temp name + rename on a local disk, a single put elsewhere),
so a checkpoint is either complete or absent. A call that finds checkpoints there resumes from the
newest and runs to the same final step: on the same device and thread count the result equals an
uninterrupted run bit for bit.
"""

from __future__ import annotations

import io
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec
import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem
from torch.nn import functional as F

from audio_synth_core.audio import resample
from audio_synth_core.errors import ConfigError, StorageError
from audio_synth_core.models.acoustic import AcousticConfig, AcousticModel
from audio_synth_core.models.features import GriffinLimVocoder, LogMel, MelConfig, f0_frames
from audio_synth_core.models.frontend import Frontend
from audio_synth_core.models.metrics import multi_resolution_stft_loss
from audio_synth_core.models.vocoder import (
    Discriminators,
    HiFiGAN,
    VocoderConfig,
    discriminator_loss,
    f0_prediction_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

# (text, float32 mono audio, sample rate in Hz)
Example = tuple[str, np.ndarray, int]
LogHook = Callable[[int, dict[str, float]], None]
SampleHook = Callable[[int, np.ndarray, int], None]

_CKPT = re.compile(r"ckpt-(\d{8})\.pt$")


# ---------------------------------------------------------------------------------------------
# Hyperparameters


@dataclass(frozen=True)
class AcousticHParams:
    """Everything that decides an acoustic training run; JSON-serializable."""

    decoder: str = "deterministic"
    size: str = "tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    grad_clip: float = 1.0
    max_frames: int = 1200  # longer utterances are left out (memory, MAS time)
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    sample_every: int = 0  # 0: never call on_sample

    def __post_init__(self) -> None:
        _positive(self, "steps", "batch_size", "checkpoint_every", "log_every", "keep_checkpoints")


@dataclass(frozen=True)
class VocoderHParams:
    """Everything that decides a vocoder training run; JSON-serializable."""

    size: str = "tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    batch_size: int = 8
    # Segments must cover the generator's context: a frame-rate vocoder (kernels 3/7/11, dilations
    # 1/3/5) trained on 32-frame segments, shorter than its receptive field, drifted on whole clips
    # (copy-synthesis LSD 13.5 dB, vs 6.6 dB when vocoded in 32-frame pieces). The tiny size
    # trained on 64 frames scores best on whole clips.
    segment_frames: int = 64
    learning_rate: float = 2e-3
    betas: tuple[float, float] = (0.8, 0.99)
    # The generator learns from spectral losses alone first; the GAN losses join at this step.
    adversarial_start_step: int = 0
    mel_weight: float = 45.0
    stft_weight: float = 2.5
    feature_weight: float = 2.0
    # Harmonic-phase vocoders: L1 on log F0 (voiced frames) plus voicing cross-entropy, for the F0
    # branch and for the MRF's auxiliary F0 head.
    f0_weight: float = 1.0
    # Fraction of the steps whose harmonic phase follows the pYIN F0 rather than the F0 branch's:
    # at 2000 steps, 1.0 gave STOI 0.957 / log-mel L1 0.200, 0.5 gave 0.950 / 0.197, 0 (the
    # branch's own F0 throughout) 0.941 / 0.213.
    f0_teacher_forcing: float = 1.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    sample_every: int = 0

    def __post_init__(self) -> None:
        _positive(self, "steps", "batch_size", "segment_frames", "checkpoint_every", "log_every")


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < 1:
            raise ConfigError(f"{type(obj).__name__}.{name} must be >= 1")


@dataclass
class AcousticTrainResult:
    model: AcousticModel
    frontend: Frontend
    mel_config: MelConfig
    step: int
    metrics: dict[str, float]
    train_seconds: float


@dataclass
class VocoderTrainResult:
    model: HiFiGAN
    mel_config: MelConfig
    step: int
    metrics: dict[str, float]
    train_seconds: float


# ---------------------------------------------------------------------------------------------
# Checkpoint storage


class CheckpointStore:
    """``ckpt-<step>.pt`` files under an fsspec URL, written atomically, newest wins."""

    def __init__(self, url: str, keep: int = 2) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.keep = keep

    def _path(self, step: int) -> str:
        return f"{self.root.rstrip('/')}/ckpt-{step:08d}.pt"

    def steps(self) -> list[int]:
        try:
            names = self.fs.ls(self.root, detail=False) if self.fs.exists(self.root) else []
        except OSError as exc:
            raise StorageError(f"cannot list checkpoints at {self.root}: {exc}") from exc
        found = (_CKPT.search(str(n)) for n in names)
        return sorted(int(m.group(1)) for m in found if m)

    def save(self, step: int, state: dict[str, Any]) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        data, path = buf.getvalue(), self._path(step)
        if isinstance(self.fs, LocalFileSystem):
            os.makedirs(self.root, exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        else:
            self.fs.pipe_file(path, data)  # one PUT: the object appears whole or not at all
        for old in self.steps()[: -self.keep]:
            self.fs.rm(self._path(old))

    def load(self, step: int, map_location: torch.device | str = "cpu") -> dict[str, Any]:
        """The checkpoint saved at ``step``."""
        data = self.fs.cat_file(self._path(step))
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)

    def load_latest(self, map_location: torch.device) -> dict[str, Any] | None:
        steps = self.steps()
        return self.load(steps[-1], map_location) if steps else None


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _fork_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


class _Order:
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


class _Window:
    """Running means of the metrics since the last log."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor | float]) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1

    def flush(self) -> dict[str, float]:
        out = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return out


def _audio_of(item: Any) -> tuple[np.ndarray, int]:
    """(text, audio, rate) or (audio, rate) -> (audio, rate)."""
    if len(item) == 3:
        return np.asarray(item[1], dtype=np.float32), int(item[2])
    return np.asarray(item[0], dtype=np.float32), int(item[1])


# ---------------------------------------------------------------------------------------------
# Acoustic model


@dataclass
class _Utterance:
    ids: torch.Tensor
    mel: torch.Tensor  # [n_mels, frames]


def _prepare_acoustic(
    dataset: Iterable[Example], frontend: Frontend, mel_config: MelConfig, max_frames: int
) -> tuple[list[_Utterance], int]:
    analyse = LogMel(mel_config)
    out: list[_Utterance] = []
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
        out.append(_Utterance(ids, mel))
    return out, dropped


def _acoustic_batch(
    items: Sequence[_Utterance], floor: float, device: torch.device
) -> tuple[torch.Tensor, ...]:
    ids = torch.nn.utils.rnn.pad_sequence([u.ids for u in items], batch_first=True)
    lengths = torch.tensor([len(u.ids) for u in items])
    frames = torch.tensor([u.mel.shape[1] for u in items])
    mel = torch.full((len(items), items[0].mel.shape[0], int(frames.max())), math.log(floor))
    for i, u in enumerate(items):
        mel[i, :, : u.mel.shape[1]] = u.mel
    return ids.to(device), lengths.to(device), mel.to(device), frames.to(device)


def _warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def train_acoustic(
    dataset: Iterable[Example],
    hparams: AcousticHParams | None = None,
    generator: torch.Generator | None = None,
    checkpoint_url: str | None = None,
    on_log: LogHook | None = None,
    on_sample: SampleHook | None = None,
    frontend: Frontend | None = None,
    mel_config: MelConfig | None = None,
    device: torch.device | str | None = None,
) -> AcousticTrainResult:
    """Train an ``AcousticModel`` on (text, audio, rate) examples.

    ``frontend`` defaults to espeak IPA for ``en-us``; without a vocabulary it is fitted on the
    dataset's texts (a resumed run checks that it gets the same vocabulary). The dataset is read
    once into memory as log-mels.
    """
    hp = hparams or AcousticHParams()
    mel_config = mel_config or MelConfig()
    device = torch.device(device) if device is not None else default_device()
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    examples = list(dataset)
    if not examples:
        raise ConfigError("train_acoustic needs at least one example")
    frontend = frontend or Frontend()
    if frontend.vocabulary is None:
        frontend = frontend.fit(text for text, _, _ in examples)
    data, dropped = _prepare_acoustic(examples, frontend, mel_config, hp.max_frames)
    if not data:
        raise ConfigError("no usable utterances (each needs at least one frame per symbol)")
    store = CheckpointStore(checkpoint_url, hp.keep_checkpoints) if checkpoint_url else None

    with torch.random.fork_rng(devices=_fork_devices(device)):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        config = AcousticConfig.sized(
            hp.size, len(frontend.vocabulary), decoder=hp.decoder, **hp.model_overrides
        )
        config = config.with_(n_mels=mel_config.n_mels)
        model = AcousticModel(config).to(device)
        all_frames = torch.cat([u.mel for u in data], dim=1)
        model.set_normalization(all_frames.mean(1).to(device), all_frames.std(1).to(device))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=hp.learning_rate, betas=(0.9, 0.98), weight_decay=0.0
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _warmup_cosine(hp.warmup_steps, hp.steps)
        )
        noise = torch.Generator(device).manual_seed(
            int(torch.randint(0, 2**62, (1,), generator=generator))
        )
        order = _Order(len(data), generator)
        step = 0
        state = store.load_latest(device) if store else None
        if state is not None:
            if state["frontend"] != frontend.to_dict():
                raise ConfigError("the checkpoint's vocabulary differs from this dataset's")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            order.restore(state["order"])
            generator.set_state(state["generator"])
            noise.set_state(state["noise"])
            _set_rng_state(state["rng"], device)
            step = state["step"]
        # A run resumed at its final step still reports the metrics it finished with.
        window, last = _Window(), dict(state.get("metrics", {})) if state else {}
        floor = mel_config.log_floor
        started = time.perf_counter()
        while step < hp.steps:
            model.train()
            batch = _acoustic_batch([data[i] for i in order.take(hp.batch_size)], floor, device)
            losses = model.losses(*batch, generator=noise)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            window.add({**{k: v.detach() for k, v in losses.items()}, "grad_norm": grad_norm})
            # Metrics first (they go into the checkpoint), the hook after the checkpoint: a hook
            # that stops the run at step k leaves a checkpoint of step k behind.
            logged = step % hp.log_every == 0 or step == hp.steps
            if logged:
                last = {**window.flush(), "lr": scheduler.get_last_lr()[0]}
            if store and (step % hp.checkpoint_every == 0 or step == hp.steps):
                store.save(
                    step,
                    {
                        "kind": "acoustic",
                        "step": step,
                        "config": config.to_dict(),
                        "frontend": frontend.to_dict(),
                        "mel_config": mel_config.to_dict(),
                        "hparams": asdict(hp),
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "order": order.state(),
                        "generator": generator.get_state(),
                        "noise": noise.get_state(),
                        "rng": _rng_state(device),
                        "metrics": last,
                    },
                )
            if on_log and logged:
                on_log(step, last)
            if on_sample and hp.sample_every and step % hp.sample_every == 0:
                on_sample(
                    step, _acoustic_sample(model, data[0], mel_config), mel_config.sample_rate_hz
                )
        model.eval()
    metrics = {**last, "dropped_utterances": float(dropped), "utterances": float(len(data))}
    return AcousticTrainResult(
        model, frontend, mel_config, step, metrics, time.perf_counter() - started
    )


def _acoustic_sample(model: AcousticModel, utt: _Utterance, mel_config: MelConfig) -> np.ndarray:
    """Griffin-Lim audio of the model's prediction for one training utterance (a progress probe)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        ids = utt.ids.unsqueeze(0).to(device)
        mel, _ = model.infer(
            ids, torch.tensor([len(utt.ids)], device=device), torch.Generator(device).manual_seed(0)
        )
        audio = GriffinLimVocoder(mel_config).to(device)(mel)[0]
    model.train(was_training)
    return audio.cpu().numpy()


# ---------------------------------------------------------------------------------------------
# Vocoder


def _prepare_vocoder(
    dataset: Iterable[Any], mel_config: MelConfig, segment_frames: int, with_f0: bool
) -> tuple[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]], int]:
    analyse = LogMel(mel_config)
    hop = mel_config.hop_length
    out, dropped = [], 0
    for item in dataset:
        audio, rate = _audio_of(item)
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


def train_vocoder(
    dataset: Iterable[Any],
    hparams: VocoderHParams | None = None,
    generator: torch.Generator | None = None,
    checkpoint_url: str | None = None,
    on_log: LogHook | None = None,
    on_sample: SampleHook | None = None,
    mel_config: MelConfig | None = None,
    device: torch.device | str | None = None,
) -> VocoderTrainResult:
    """Train a ``HiFiGAN`` generator (with its discriminators) on real audio.

    Items are (text, audio, rate) or (audio, rate); each step draws ``batch_size`` random segments
    of ``segment_frames`` mel frames. Returns the generator (the discriminators are only kept in
    checkpoints).
    """
    hp = hparams or VocoderHParams()
    mel_config = mel_config or MelConfig()
    device = torch.device(device) if device is not None else default_device()
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    hop = mel_config.hop_length
    config = VocoderConfig.sized(hp.size, **hp.model_overrides).with_(
        n_mels=mel_config.n_mels,
        hop_length=hop,
        sample_rate_hz=mel_config.sample_rate_hz,
        mel_n_fft=mel_config.n_fft,
        f_min_hz=mel_config.f_min_hz,
        f_max_hz=mel_config.f_max_hz,
    )
    data, dropped = _prepare_vocoder(dataset, mel_config, hp.segment_frames, config.harmonic_phase)
    if not data:
        raise ConfigError(f"no clip is at least {hp.segment_frames} frames long")
    store = CheckpointStore(checkpoint_url, hp.keep_checkpoints) if checkpoint_url else None
    # The loss mel covers the full band (HiFi-GAN does the same): high frequencies count too.
    loss_mel = LogMel(
        MelConfig(**{**mel_config.to_dict(), "f_max_hz": mel_config.sample_rate_hz / 2})
    )
    loss_mel = loss_mel.to(device)

    with torch.random.fork_rng(devices=_fork_devices(device)):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        gen = HiFiGAN(config).to(device)
        disc = Discriminators(config).to(device)
        opt_g = torch.optim.AdamW(gen.parameters(), hp.learning_rate, betas=hp.betas)
        opt_d = torch.optim.AdamW(disc.parameters(), hp.learning_rate, betas=hp.betas)
        # The learning rate is a function of the step alone (in the checkpoint): no scheduler
        # state to keep in sync while the discriminators sit out the first steps.
        lr_factor = _warmup_cosine(1, hp.steps)
        order = _Order(len(data), generator)
        step = 0
        state = store.load_latest(device) if store else None
        if state is not None:
            gen.load_state_dict(state["model"])
            disc.load_state_dict(state["discriminators"])
            opt_g.load_state_dict(state["optimizer_g"])
            opt_d.load_state_dict(state["optimizer_d"])
            order.restore(state["order"])
            generator.set_state(state["generator"])
            _set_rng_state(state["rng"], device)
            step = state["step"]
        window, last = _Window(), dict(state.get("metrics", {})) if state else {}
        seg = hp.segment_frames
        started = time.perf_counter()
        while step < hp.steps:
            gen.train()
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = hp.learning_rate * lr_factor(step)
            mels, wavs, f0s = [], [], []
            for i in order.take(hp.batch_size):
                mel, wav, f0 = data[i]
                start = int(torch.randint(0, mel.shape[1] - seg + 1, (1,), generator=generator))
                mels.append(mel[:, start : start + seg])
                wavs.append(wav[start * hop : (start + seg) * hop])
                if f0 is not None:
                    f0s.append(f0[start : start + seg])
            mel = torch.stack(mels).to(device)
            real = torch.stack(wavs).to(device)
            f0 = torch.stack(f0s).to(device) if f0s else None
            forced = step < hp.f0_teacher_forcing * hp.steps
            out = gen.synthesize(mel, f0 if forced else None)
            fake = out.audio
            adversarial = step >= hp.adversarial_start_step
            metrics: dict[str, torch.Tensor] = {}
            if adversarial:
                real_scores, _ = disc(real)
                fake_scores, _ = disc(fake.detach())
                loss_d = discriminator_loss(real_scores, fake_scores)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                metrics["loss_d"] = loss_d.detach()
            mel_l1 = F.l1_loss(loss_mel(fake), loss_mel(real))
            loss_g = hp.mel_weight * mel_l1
            metrics["mel_l1"] = mel_l1.detach()
            if hp.stft_weight:
                stft = multi_resolution_stft_loss(real, fake)
                loss_g = loss_g + hp.stft_weight * stft
                metrics["mrstft"] = stft.detach()
            if f0 is not None and out.log_f0 is not None:
                f0_loss = f0_prediction_loss(out.log_f0, out.voicing_logit, f0)
                aux_loss = f0_prediction_loss(out.aux_log_f0, out.aux_voicing_logit, f0)
                loss_g = loss_g + hp.f0_weight * (f0_loss + aux_loss)
                metrics["f0"], metrics["f0_aux"] = f0_loss.detach(), aux_loss.detach()
            if adversarial:
                _, real_feats = disc(real)
                fake_scores, fake_feats = disc(fake)
                adv = generator_adversarial_loss(fake_scores)
                fm = feature_matching_loss(real_feats, fake_feats)
                loss_g = loss_g + adv + hp.feature_weight * fm
                metrics["adv_g"], metrics["feature_matching"] = adv.detach(), fm.detach()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            step += 1
            metrics["loss_g"] = loss_g.detach()
            window.add(metrics)
            logged = step % hp.log_every == 0 or step == hp.steps
            if logged:
                last = {**window.flush(), "lr": opt_g.param_groups[0]["lr"]}
            if store and (step % hp.checkpoint_every == 0 or step == hp.steps):
                store.save(
                    step,
                    {
                        "kind": "vocoder",
                        "step": step,
                        "config": config.to_dict(),
                        "mel_config": mel_config.to_dict(),
                        "hparams": asdict(hp),
                        "model": gen.state_dict(),
                        "discriminators": disc.state_dict(),
                        "optimizer_g": opt_g.state_dict(),
                        "optimizer_d": opt_d.state_dict(),
                        "order": order.state(),
                        "generator": generator.get_state(),
                        "rng": _rng_state(device),
                        "metrics": last,
                    },
                )
            if on_log and logged:
                on_log(step, last)
            if on_sample and hp.sample_every and step % hp.sample_every == 0:
                gen.eval()
                with torch.no_grad():
                    audio = gen(data[0][0].unsqueeze(0).to(device))[0].cpu().numpy()
                on_sample(step, audio, mel_config.sample_rate_hz)
        gen.eval()
    metrics_out = {**last, "dropped_clips": float(dropped), "clips": float(len(data))}
    return VocoderTrainResult(gen, mel_config, step, metrics_out, time.perf_counter() - started)
