"""``TTSModel``: frontend vocabulary + acoustic model + vocoder, batched synthesis, save/load.

A saved model is a directory: ``config.json`` (frontend with its vocabulary, mel settings, acoustic
and vocoder configs, vocoder choice, format version) plus ``acoustic.pt`` and, for HiFi-GAN,
``vocoder.pt`` (state dicts only: loading needs no pickled classes, and the files are what an MLflow
or ONNX wrapper picks up).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audio_synth_core.errors import ConfigError
from audio_synth_core.models.acoustic import AcousticConfig, AcousticModel
from audio_synth_core.models.features import GriffinLimVocoder, MelConfig
from audio_synth_core.models.frontend import PAD_ID, Frontend, Phonemizer
from audio_synth_core.models.vocoder import HiFiGAN, VocoderConfig

VOCODERS = ("hifigan", "griffinlim")
FORMAT_VERSION = 1


class TTSModel:
    """Text -> float32 mono audio in [-1, 1] at ``sample_rate_hz``."""

    def __init__(
        self,
        frontend: Frontend,
        acoustic: AcousticModel,
        mel_config: MelConfig,
        vocoder: HiFiGAN | None = None,
        vocoder_kind: str = "hifigan",
        griffin_lim_iters: int = 32,
        length_scale: float = 1.0,
    ) -> None:
        if vocoder_kind not in VOCODERS:
            raise ConfigError(f"unknown vocoder {vocoder_kind!r}; expected one of {VOCODERS}")
        if vocoder_kind == "hifigan" and vocoder is None:
            raise ConfigError("vocoder_kind 'hifigan' needs a trained HiFiGAN")
        if frontend.vocabulary is None:
            raise ConfigError("the frontend has no vocabulary")
        self.frontend = frontend
        self.acoustic = acoustic.eval()
        self.mel_config = mel_config
        self.vocoder = vocoder.eval() if vocoder is not None else None
        self.vocoder_kind = vocoder_kind
        self.griffin_lim_iters = griffin_lim_iters
        self.length_scale = length_scale
        self._griffin_lim: GriffinLimVocoder | None = None

    @property
    def sample_rate_hz(self) -> int:
        return self.mel_config.sample_rate_hz

    @property
    def device(self) -> torch.device:
        return next(self.acoustic.parameters()).device

    def to(self, device: torch.device | str) -> TTSModel:
        self.acoustic.to(device)
        if self.vocoder is not None:
            self.vocoder.to(device)
        self._griffin_lim = None
        return self

    def with_vocoder(self, vocoder_kind: str) -> TTSModel:
        """The same model with another vocoder choice (shares the modules)."""
        return TTSModel(
            self.frontend,
            self.acoustic,
            self.mel_config,
            self.vocoder,
            vocoder_kind,
            self.griffin_lim_iters,
            self.length_scale,
        )

    def encode_texts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded symbol ids ``[B, N]`` and lengths ``[B]``."""
        seqs = [self.frontend.encode(t) for t in texts]
        lengths = torch.tensor([len(s) for s in seqs])
        ids = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
        return ids, lengths

    @torch.no_grad()
    def mels(self, texts: list[str], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mels ``[B, n_mels, T]`` and frame lengths for a batch of texts."""
        device = self.device
        ids, lengths = self.encode_texts(texts)
        generator = torch.Generator(device).manual_seed(seed)
        return self.acoustic.infer(ids.to(device), lengths.to(device), generator, self.length_scale)

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, T]`` -> audio ``[B, T * hop]`` with the chosen vocoder."""
        if self.vocoder_kind == "hifigan":
            return self.vocoder(mel)
        if self._griffin_lim is None:
            self._griffin_lim = GriffinLimVocoder(self.mel_config, self.griffin_lim_iters)
            self._griffin_lim.to(mel.device)
        return self._griffin_lim(mel)

    def synthesize(self, texts: list[str], seed: int = 0) -> list[np.ndarray]:
        """One clip per text, synthesized as one padded batch; the same seed gives the same audio.

        Texts in a batch share one random stream (VAE/diffusion noise), so a clip depends on the
        batch it is in; synthesize one text per call where per-item reproducibility matters.
        """
        if not texts:
            return []
        mel, frames = self.mels(texts, seed)
        # Silence past each clip's end, so padded frames cannot leak into the vocoder's context.
        mel = mel.masked_fill(
            torch.arange(mel.shape[-1], device=mel.device) >= frames.unsqueeze(1).unsqueeze(1),
            float(np.log(self.mel_config.log_floor)),
        )
        audio = self.vocode(mel).clamp(-1.0, 1.0).cpu().numpy()
        hop = self.mel_config.hop_length
        return [
            np.ascontiguousarray(audio[i, : int(n) * hop], dtype=np.float32)
            for i, n in enumerate(frames.tolist())
        ]

    # -- persistence -----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "frontend": self.frontend.to_dict(),
            "mel": self.mel_config.to_dict(),
            "acoustic": self.acoustic.config.to_dict(),
            "vocoder_kind": self.vocoder_kind,
            "vocoder": self.vocoder.config.to_dict() if self.vocoder is not None else None,
            "griffin_lim_iters": self.griffin_lim_iters,
            "length_scale": self.length_scale,
        }

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``config.json`` and the state dicts into ``directory`` (created if needed)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save(self.acoustic.state_dict(), path / "acoustic.pt")
        if self.vocoder is not None:
            _atomic_torch_save(self.vocoder.state_dict(), path / "vocoder.pt")
        # The config goes last: a directory with config.json is complete.
        tmp = path / "config.json.tmp"
        tmp.write_text(json.dumps(self.config(), indent=2, ensure_ascii=False))
        os.replace(tmp, path / "config.json")

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        device: torch.device | str = "cpu",
        phonemizer: Phonemizer | None = None,
    ) -> TTSModel:
        path = Path(directory)
        config = json.loads((path / "config.json").read_text())
        acoustic_state = torch.load(path / "acoustic.pt", map_location="cpu", weights_only=True)
        vocoder_state = None
        if config["vocoder"] is not None:
            vocoder_state = torch.load(path / "vocoder.pt", map_location="cpu", weights_only=True)
        return cls.from_config(config, acoustic_state, vocoder_state, device, phonemizer)

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        acoustic_state: dict[str, torch.Tensor],
        vocoder_state: dict[str, torch.Tensor] | None,
        device: torch.device | str = "cpu",
        phonemizer: Phonemizer | None = None,
    ) -> TTSModel:
        """A model from ``config()`` and state dicts (what ``save`` writes, or an MLflow copy)."""
        if config.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"unsupported TTS model format {config.get('format_version')!r}")
        acoustic = AcousticModel(AcousticConfig.from_dict(config["acoustic"]))
        acoustic.load_state_dict(acoustic_state)
        vocoder = None
        if config["vocoder"] is not None:
            vocoder = HiFiGAN(VocoderConfig.from_dict(config["vocoder"]))
            vocoder.load_state_dict(vocoder_state)
        model = cls(
            Frontend.from_dict(config["frontend"], phonemizer),
            acoustic,
            MelConfig.from_dict(config["mel"]),
            vocoder,
            config["vocoder_kind"],
            config["griffin_lim_iters"],
            config["length_scale"],
        )
        return model.to(device)


def _atomic_torch_save(obj: Any, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, target)
