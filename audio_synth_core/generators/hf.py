"""``HFVitsGenerator``: Hugging Face ``transformers`` VITS / MMS-TTS models, from a folder or object
storage, never from the Hub.

The model folder is what ``VitsModel.save_pretrained`` + ``VitsTokenizer.save_pretrained`` write
(``config.json``, weights, ``vocab.json``, ``tokenizer_config.json``...). A local folder is used in
place; any other fsspec URL is copied once per process into the local cache (``fetch_directory``).
Loading sets ``HF_HUB_OFFLINE=1`` and passes ``local_files_only=True``: nothing is downloaded.

``transformers`` is an optional extra (``pip install 'audio-synth[hf]'``), imported only when a
model is loaded.

Randomness. VITS draws its duration and prior noise from torch's global generator, inside the model.
Each request therefore runs on its own, under ``torch.random.fork_rng`` seeded with the request's
seed: the same request gives the same audio in any batch, and the caller's global RNG state is left
as it was. When both noise scales are 0 the model is deterministic and requests run ``batch_size``
at a time (padded); a clip's last few milliseconds can then differ slightly from the same text
synthesized alone, because the vocoder sees the batch's padding.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from audio_synth_core.errors import GenerationError, PluginError, UnknownVoiceError
from audio_synth_core.generators.base import (
    Generator,
    SynthesisRequest,
    VoiceInfo,
    given_params_with_defaults,
)
from audio_synth_core.generators.model_folders import directory_digest, fetch_directory
from audio_synth_core.plugins.params import StrictParams, parse_params

INSTALL_HINT = "pip install 'audio-synth[hf]'"
DEVICES = r"^(auto|cpu|cuda(:\d+)?)$"
_NON_ROMAN = re.compile(r"[^\x00-\x7F]")


def _transformers() -> Any:
    # huggingface_hub reads HF_HUB_OFFLINE when first imported: set it before transformers loads.
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import transformers
    except ImportError as exc:
        raise PluginError(f"the hf-vits generator needs transformers: {INSTALL_HINT}") from exc
    return transformers


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    device: Any
    version: str
    lock: threading.Lock


_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str, str], _Loaded] = {}


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PluginError(f"device {device!r} was asked for but torch sees no CUDA device")
    return device


def load_vits(
    url: str, device: str = "auto", storage_options: Mapping[str, Any] | None = None
) -> _Loaded:
    """The VITS model and tokenizer at ``url`` on ``device``, loaded once per process."""
    import json

    key = (url, json.dumps(dict(storage_options or {}), sort_keys=True, default=str), device)
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        transformers = _transformers()
        import torch

        folder = fetch_directory(url, storage_options)
        try:
            tokenizer = transformers.VitsTokenizer.from_pretrained(
                str(folder), local_files_only=True
            )
            model = transformers.VitsModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise PluginError(f"{url!r} is not a transformers VITS model folder: {exc}") from exc
        if tokenizer.phonemize and importlib.util.find_spec("phonemizer") is None:
            raise PluginError(
                f"the tokenizer of {url!r} phonemizes its input: pip install phonemizer"
            )
        resolved = torch.device(_resolve_device(device))
        model = model.to(resolved).eval()
        loaded = _Loaded(
            model, tokenizer, resolved, "sha256:" + directory_digest(folder)[:16], threading.Lock()
        )
        _MODELS[key] = loaded
        return loaded


class HFVitsParams(StrictParams):
    """Where the model is, where it runs, and its sampling settings; see ``HFVitsGenerator``."""

    model_url: str = Field(min_length=1)
    device: str = Field("auto", pattern=DEVICES)
    batch_size: int = Field(1, ge=1)
    noise_scale: float | None = Field(None, ge=0)
    noise_scale_duration: float | None = Field(None, ge=0)
    speaking_rate: float | None = Field(None, gt=0)
    language: str | None = None
    storage_options: dict[str, Any] | None = None


class HFVitsGenerator(Generator):
    """A ``transformers`` VITS / MMS-TTS model (``VitsModel`` + ``VitsTokenizer``).

    Parameters: ``model_url`` (required) a local folder or fsspec URL of a ``save_pretrained``
    folder; ``device`` ``auto`` (CUDA when present) | ``cpu`` | ``cuda[:N]``; ``batch_size``
    (1) requests per forward pass, used only when both noise scales are 0; ``noise_scale``,
    ``noise_scale_duration``, ``speaking_rate`` default to the model config's; ``language`` of the
    voices (default the tokenizer's, e.g. ``eng``); ``storage_options`` for fsspec.

    Voices: ``default`` for a one-speaker model, ``speaker-<i>`` for a multi-speaker one.
    ``SynthesisRequest.seed`` seeds the request's noise.
    """

    name: ClassVar[str] = "hf-vits"

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(HFVitsParams, self.name, params, "generator")
        # Recorded as before (item ids hash it): the given values, the defaults of the others.
        super().__init__(**given_params_with_defaults(HFVitsParams, params))

    def _loaded(self) -> _Loaded:
        c = self.config
        return load_vits(c.model_url, c.device, c.storage_options)

    @property
    def version(self) -> str:
        return self._loaded().version

    @property
    def sample_rate_hz(self) -> int:
        return int(self._loaded().model.config.sampling_rate)

    def voices(self) -> list[VoiceInfo]:
        loaded = self._loaded()
        language = self.config.language or loaded.tokenizer.language or "und"
        speakers = int(loaded.model.config.num_speakers)
        if speakers <= 1:
            return [VoiceInfo(name="default", language=language)]
        return [
            VoiceInfo(name=f"speaker-{i}", language=language, attributes={"speaker_id": str(i)})
            for i in range(speakers)
        ]

    def _settings(self, loaded: _Loaded) -> tuple[float, float, float]:
        model, c = loaded.model.config, self.config
        return (
            float(model.noise_scale if c.noise_scale is None else c.noise_scale),
            float(
                model.noise_scale_duration
                if c.noise_scale_duration is None
                else c.noise_scale_duration
            ),
            float(model.speaking_rate if c.speaking_rate is None else c.speaking_rate),
        )

    def _ids(self, loaded: _Loaded, text: str) -> list[int]:
        if not text or not text.strip():
            raise GenerationError("empty text")
        tokenizer = loaded.tokenizer
        if (
            tokenizer.is_uroman
            and _NON_ROMAN.search(text)
            and importlib.util.find_spec("uroman") is None
        ):
            raise GenerationError("this model reads romanized text: pip install uroman")
        ids = tokenizer(text)["input_ids"]
        if not ids:
            raise GenerationError(f"no character of {text!r} is in the model's vocabulary")
        return list(ids)

    def generate(self, requests: Sequence[SynthesisRequest]) -> list[np.ndarray | Exception]:
        import torch

        loaded = self._loaded()
        noise, noise_duration, rate = self._settings(loaded)
        multi = int(loaded.model.config.num_speakers) > 1
        out: list[np.ndarray | Exception | None] = [None] * len(requests)
        # (request index, ids, seed) per speaker id
        groups: dict[int | None, list[tuple[int, list[int], int]]] = {}
        for i, request in enumerate(requests):
            try:
                voice = self.resolve_voice(request.voice or None, request.language)
                ids = self._ids(loaded, request.text)
            except (GenerationError, UnknownVoiceError) as exc:
                out[i] = exc
                continue
            speaker = int(voice.attributes["speaker_id"]) if multi else None
            groups.setdefault(speaker, []).append((i, ids, request.seed))

        stochastic = noise > 0 or (
            noise_duration > 0 and loaded.model.config.use_stochastic_duration_prediction
        )
        size = 1 if stochastic else self.config.batch_size
        model, device = loaded.model, loaded.device
        for speaker, items in groups.items():
            items.sort(key=lambda item: len(item[1]))
            for start in range(0, len(items), size):
                chunk = items[start : start + size]
                width = max(len(ids) for _, ids, _ in chunk)
                pad = loaded.tokenizer.pad_token_id or 0
                ids = torch.tensor([x + [pad] * (width - len(x)) for _, x, _ in chunk])
                mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for _, x, _ in chunk])
                devices = (
                    [device.index if device.index is not None else torch.cuda.current_device()]
                    if device.type == "cuda"
                    else []
                )
                try:
                    with loaded.lock, torch.random.fork_rng(devices=devices), torch.no_grad():
                        # The loaded model is shared by every generator built on the same folder.
                        model.noise_scale, model.noise_scale_duration = noise, noise_duration
                        torch.manual_seed(int(chunk[0][2]) % 2**64)
                        result = model(
                            input_ids=ids.to(device),
                            attention_mask=mask.to(device),
                            speaker_id=speaker,
                            speaking_rate=rate,
                        )
                except (RuntimeError, ValueError) as exc:  # out of memory, bad input shapes
                    for i, _, _ in chunk:
                        out[i] = GenerationError(f"VITS failed on the batch: {exc}")
                    continue
                waveform = result.waveform.float().clamp(-1.0, 1.0).cpu().numpy()
                lengths = result.sequence_lengths.tolist()
                for row, (i, _, _) in enumerate(chunk):
                    out[i] = np.ascontiguousarray(waveform[row, : int(lengths[row])], np.float32)
        return out  # type: ignore[return-value]  # every slot is filled above
