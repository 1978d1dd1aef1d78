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

from audio_synth_core.errors import GenerationError, PluginError, UnknownVoiceError
from audio_synth_core.generators.base import Generator, SynthesisRequest, VoiceInfo
from audio_synth_core.generators.onnx import directory_digest, fetch_directory

INSTALL_HINT = "pip install 'audio-synth[hf]'"
DEVICES = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
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


_DEFAULTS: dict[str, Any] = {
    "model_url": None,
    "device": "auto",
    "batch_size": 1,
    "noise_scale": None,
    "noise_scale_duration": None,
    "speaking_rate": None,
    "language": None,
    "storage_options": None,
}


def _non_negative(key: str, value: Any, strict: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"hf-vits parameter {key!r} must be a number, got {value!r}")
    if value < 0 or (strict and value == 0):
        raise ValueError(f"hf-vits parameter {key!r} must be {'> 0' if strict else '>= 0'}")


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
        unknown = sorted(set(params) - set(_DEFAULTS))
        if unknown:
            raise TypeError(
                f"unknown hf-vits parameter(s) {', '.join(unknown)}; known: {', '.join(_DEFAULTS)}"
            )
        merged = {**_DEFAULTS, **params}
        if not isinstance(merged["model_url"], str) or not merged["model_url"]:
            raise TypeError("hf-vits parameter 'model_url' is required (a folder or fsspec URL)")
        if not isinstance(merged["device"], str) or not DEVICES.match(merged["device"]):
            raise ValueError(
                f"hf-vits parameter 'device' must be auto, cpu or cuda[:N], got {merged['device']!r}"
            )
        size = merged["batch_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"hf-vits parameter 'batch_size' must be a positive integer: {size!r}")
        _non_negative("noise_scale", merged["noise_scale"])
        _non_negative("noise_scale_duration", merged["noise_scale_duration"])
        _non_negative("speaking_rate", merged["speaking_rate"], strict=True)
        super().__init__(**merged)

    def _loaded(self) -> _Loaded:
        p = self.params
        return load_vits(p["model_url"], p["device"], p["storage_options"])

    @property
    def version(self) -> str:
        return self._loaded().version

    @property
    def sample_rate_hz(self) -> int:
        return int(self._loaded().model.config.sampling_rate)

    def voices(self) -> list[VoiceInfo]:
        loaded = self._loaded()
        language = self.params["language"] or loaded.tokenizer.language or "und"
        speakers = int(loaded.model.config.num_speakers)
        if speakers <= 1:
            return [VoiceInfo(name="default", language=language)]
        return [
            VoiceInfo(name=f"speaker-{i}", language=language, attributes={"speaker_id": str(i)})
            for i in range(speakers)
        ]

    def _settings(self, loaded: _Loaded) -> tuple[float, float, float]:
        config = loaded.model.config
        p = self.params
        return (
            float(config.noise_scale if p["noise_scale"] is None else p["noise_scale"]),
            float(
                config.noise_scale_duration
                if p["noise_scale_duration"] is None
                else p["noise_scale_duration"]
            ),
            float(config.speaking_rate if p["speaking_rate"] is None else p["speaking_rate"]),
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
        size = 1 if stochastic else self.params["batch_size"]
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
