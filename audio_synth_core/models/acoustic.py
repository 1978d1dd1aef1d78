"""A small non-autoregressive acoustic model: symbol ids -> log-mel frames (FastSpeech-style).

Encoder: symbol embedding + sinusoidal positions + feed-forward Transformer blocks (self-attention and
a 1-D convolution; ``layers``). Each symbol also gets ``mu``, a coarse mel frame (in normalized mel
units).

Alignment (training only): monotonic alignment search (MAS, Glow-TTS) on the fly (``alignment``).
For every utterance the most likely monotonic path of frames through symbols is found under
``N(mu_symbol, I)``; it gives each symbol its duration (frame count), and ``mu`` is trained towards
the frames it was aligned to (the "prior" loss). Nothing outside the model is needed: any (text,
audio) corpus trains it, not only espeak's.

Durations: a convolutional duration predictor learns ``log(1 + frames)`` from the MAS durations on
the detached encoder output. The length regulator (``alignment.expand``) repeats each symbol's
hidden state by its duration.

Decoder variants (``AcousticConfig.decoder``), each predicting the mel as ``mu`` plus a residual,
one module each under ``decoders``: ``deterministic`` (L1), ``vae`` (per-frame latents, L1 + KL)
and ``diffusion`` (DDPM over the residual, DDIM sampling).

ONNX: ``encode`` -> (hidden, mu, log durations), ``durations_from_log``, ``expand`` and
``decode(hidden, mu, mask, noise)`` take tensors only; randomness enters as an explicit ``noise``
tensor of ``noise_shape(batch, frames)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.alignment import expand, monotonic_alignment_search
from audio_synth_core.models.decoders.deterministic import DeterministicDecoder
from audio_synth_core.models.decoders.diffusion import DiffusionDecoder
from audio_synth_core.models.decoders.vae import VAEDecoder
from audio_synth_core.models.layers import ConvNormStack, FFTStack, lengths_to_mask, masked_mean

DECODER_CLASSES: dict[str, type[nn.Module]] = {
    "deterministic": DeterministicDecoder,
    "vae": VAEDecoder,
    "diffusion": DiffusionDecoder,
}
DECODERS = tuple(DECODER_CLASSES)

# Size presets. "tiny" trains meaningfully in minutes on 2 CPU cores; "base" is FastSpeech 2-sized.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "d_model": 96,
        "n_heads": 2,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "ffn_dim": 192,
        "duration_filters": 96,
        "latent_dim": 8,
        "diffusion_channels": 64,
        "diffusion_layers": 6,
    },
    "small": {
        "d_model": 192,
        "n_heads": 2,
        "encoder_layers": 4,
        "decoder_layers": 4,
        "ffn_dim": 768,
        "duration_filters": 192,
        "latent_dim": 16,
        "diffusion_channels": 128,
        "diffusion_layers": 12,
    },
    "base": {
        "d_model": 256,
        "n_heads": 2,
        "encoder_layers": 6,
        "decoder_layers": 6,
        "ffn_dim": 1024,
        "duration_filters": 256,
        "latent_dim": 16,
        "diffusion_channels": 256,
        "diffusion_layers": 20,
    },
}


@dataclass(frozen=True)
class AcousticConfig:
    """Hyperparameters of ``AcousticModel``; JSON-serializable (``to_dict``)."""

    n_symbols: int
    n_mels: int = 80
    decoder: str = "deterministic"
    d_model: int = 96
    n_heads: int = 2
    encoder_layers: int = 2
    decoder_layers: int = 2
    ffn_dim: int = 192
    kernel_size: int = 3
    dropout: float = 0.1
    duration_filters: int = 96
    # vae
    latent_dim: int = 8
    kl_weight: float = 0.02
    prior_temperature: float = 0.667
    # diffusion
    diffusion_channels: int = 64
    diffusion_layers: int = 6
    diffusion_steps: int = 50
    inference_steps: int = 25
    ddim_eta: float = 1.0
    # "x0": the denoiser predicts the clean residual (an untrained one predicts 0, i.e. the
    # coarse mel mu: it degrades gracefully and learns in minutes); "eps": the noise (DDPM).
    diffusion_prediction: str = "x0"

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {self.decoder!r}; expected one of {DECODERS}")
        if self.d_model % self.n_heads:
            raise ConfigError("d_model must be divisible by n_heads")
        if self.diffusion_prediction not in ("x0", "eps"):
            raise ConfigError("diffusion_prediction must be 'x0' or 'eps'")
        if not 1 <= self.inference_steps <= self.diffusion_steps:
            raise ConfigError("inference_steps must be in [1, diffusion_steps]")

    @classmethod
    def sized(cls, size: str, n_symbols: int, **overrides: Any) -> AcousticConfig:
        """A config from a size preset (``tiny``, ``small``, ``base``) plus explicit overrides."""
        if size not in SIZES:
            raise ConfigError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        return cls.from_dict({**SIZES[size], "n_symbols": n_symbols, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcousticConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown AcousticConfig keys: {sorted(unknown)}")
        return cls(**data)

    def with_(self, **changes: Any) -> AcousticConfig:
        return replace(self, **changes)


# ---------------------------------------------------------------------------------------------
# The model


class AcousticModel(nn.Module):
    """Symbol ids -> log-mel; see the module docstring for the parts."""

    def __init__(self, config: AcousticConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.n_symbols, c.d_model, padding_idx=0)
        nn.init.normal_(self.embedding.weight, 0.0, c.d_model**-0.5)
        self.encoder = FFTStack(c, c.encoder_layers)
        self.mu = nn.Linear(c.d_model, c.n_mels)
        self.duration = ConvNormStack(c.d_model, c.duration_filters, 1, 3, c.dropout)
        self.decoder = DECODER_CLASSES[c.decoder](c)
        # Per-bin mel statistics of the training set: the model works in normalized units.
        self.register_buffer("mel_mean", torch.zeros(c.n_mels))
        self.register_buffer("mel_std", torch.ones(c.n_mels))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std.clamp(min=1e-3))

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, T, n_mels]`` -> normalized units."""
        return (mel - self.mel_mean) / self.mel_std

    def denormalize(self, mel: torch.Tensor) -> torch.Tensor:
        return mel * self.mel_std + self.mel_mean

    # -- exportable pieces ----------------------------------------------------------------------

    def encode(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``ids [B, N]`` -> hidden ``[B, N, C]``, mu ``[B, N, n_mels]``, log-duration, mask."""
        mask = lengths_to_mask(lengths, ids.shape[1])
        h = self.encoder(self.embedding(ids) * math.sqrt(self.config.d_model), mask)
        mu = self.mu(h) * mask.unsqueeze(-1)
        log_dur = self.duration(h.detach(), mask).squeeze(-1)
        return h, mu, log_dur, mask

    @staticmethod
    def durations_from_log(
        log_dur: torch.Tensor, mask: torch.Tensor, length_scale: float = 1.0
    ) -> torch.Tensor:
        """Predicted integer frame counts: at least one frame per symbol, zero on padding."""
        frames = torch.round((torch.exp(log_dur) - 1.0) * length_scale).clamp(min=1.0)
        return (frames * mask.to(frames.dtype)).long()

    def noise_shape(self, batch: int, frames: int) -> tuple[int, ...]:
        return self.decoder.noise_shape(batch, frames)

    def decode(
        self,
        h_frames: torch.Tensor,
        mu_frames: torch.Tensor,
        mask: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Expanded hidden/mu ``[B, T, .]`` -> log-mel ``[B, n_mels, T]`` (denormalized)."""
        mel = self.denormalize(self.decoder(h_frames, mu_frames, mask, noise))
        return (mel * mask.unsqueeze(-1)).transpose(1, 2)

    # -- inference ------------------------------------------------------------------------------

    @torch.no_grad()
    def infer(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
        length_scale: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel ``[B, n_mels, T]`` and frame lengths ``[B]``; random draws from ``generator``."""
        h, mu, log_dur, mask = self.encode(ids, lengths)
        durations = self.durations_from_log(log_dur, mask, length_scale)
        h_frames, frame_mask = expand(h, durations)
        mu_frames, _ = expand(mu, durations)
        shape = self.noise_shape(ids.shape[0], h_frames.shape[1])
        noise = torch.randn(shape, generator=generator, device=ids.device)
        return self.decode(h_frames, mu_frames, frame_mask, noise), durations.sum(1)

    # -- training -------------------------------------------------------------------------------

    def losses(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training losses for a batch; ``mel [B, n_mels, T]`` log-mel; ``"loss"`` is the total."""
        target = self.normalize(mel.transpose(1, 2))
        frame_mask = lengths_to_mask(mel_lengths, target.shape[1])
        h, mu, log_dur, mask = self.encode(ids, lengths)
        with torch.no_grad():
            # log N(x_t; mu_n, I) up to a constant, [B, N, T].
            log_p = -0.5 * torch.cdist(mu, target).pow(2)
            durations = monotonic_alignment_search(
                log_p.cpu().numpy(), lengths.cpu().numpy(), mel_lengths.cpu().numpy()
            )
            durations = torch.from_numpy(durations).to(ids.device)
        h_frames, _ = expand(h, durations, target.shape[1])
        mu_frames, _ = expand(mu, durations, target.shape[1])
        prior = masked_mean((mu_frames - target) ** 2, frame_mask)
        dur_target = torch.log1p(durations.to(log_dur.dtype))
        duration = ((log_dur - dur_target) ** 2 * mask).sum() / mask.sum()
        out = self.decoder.losses(h_frames, mu_frames, frame_mask, target, generator)
        weighted = getattr(self.decoder, "weighted", None)
        dec_total = weighted(out) if weighted else sum(out.values())
        out = {"prior": prior, "duration": duration, **out}
        out["loss"] = prior + duration + dec_total
        return out


class EncoderGraph(nn.Module):
    """Exportable first half: ``ids, lengths`` -> expanded hidden, expanded mu, frame mask.

    Encoder, duration rounding and length regulation in one graph with dynamic batch and lengths
    (verified with the TorchScript ONNX exporter, opset 17, against onnxruntime).
    """

    def __init__(self, model: AcousticModel, length_scale: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.length_scale = length_scale

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, mu, log_dur, mask = self.model.encode(ids, lengths)
        durations = self.model.durations_from_log(log_dur, mask, self.length_scale)
        h_frames, frame_mask = expand(h, durations)
        mu_frames, _ = expand(mu, durations)
        return h_frames, mu_frames, frame_mask


class DecoderGraph(nn.Module):
    """Exportable second half: expanded features + ``noise`` (``noise_shape``) -> log-mel."""

    def __init__(self, model: AcousticModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        h_frames: torch.Tensor,
        mu_frames: torch.Tensor,
        mask: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        return self.model.decode(h_frames, mu_frames, mask, noise)
