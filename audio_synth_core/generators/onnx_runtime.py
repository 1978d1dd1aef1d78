"""An ONNX export bundle in onnxruntime sessions (``OnnxTTS``): symbol ids -> log-mel -> audio.

A bundle (written by ``audio_synth_core.models.onnx_export.export_onnx``) is a folder with
``encoder.onnx``, ``decoder.onnx``, ``vocoder.onnx`` (absent when the vocoder is Griffin-Lim) and
``tts.json``, which holds everything else synthesis needs: the frontend and its vocabulary, the mel
settings, the model configs, the layout of the decoder's noise input, the length scale, the
vocoder's context and the sha256 of every graph. The bundle's identity (``version``) is the sha256
of ``tts.json``; the graphs are checked against their recorded hashes when loaded.

Between the two acoustic graphs, duration rounding and length regulation run in numpy
(``durations_from_exp``, ``expand``): the same arithmetic as ``AcousticModel.durations_from_log``
(after its ``exp``, which stays in the graph) and ``alignment.expand``; tests compare them bit for
bit. The length scale is a run-time setting.

Randomness (VAE latents, diffusion noise) enters the decoder as an explicit input. ``synthesize``
draws each item's noise from ``numpy.random.default_rng(seed)`` with its own frame count, and
vocodes each clip with enough trailing silence (``vocoder_context_frames``) that what follows it in
a padded batch cannot reach it: a clip does not depend on its batch neighbours.

Nothing here imports torch, except the Griffin-Lim vocoder (torchaudio's), used only by bundles
exported from a Griffin-Lim model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audio_synth_core.errors import PluginError
from audio_synth_core.generators.model_folders import fetch_directory, sha256_file
from audio_synth_core.models.frontend import PAD_ID, Frontend

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "audio-synth-onnx"
BUNDLE_VERSION = 1
MANIFEST = "tts.json"
GRAPHS = ("encoder", "decoder", "vocoder")
DEFAULT_LANGUAGE = "en-us"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# Noise-shape axes that vary per call; every other entry of tts.json's noise shape is fixed.
BATCH_AXIS, FRAMES_AXIS = "batch", "frames"

NoiseFn = Callable[[np.ndarray], np.ndarray]
"""Per-item frame counts ``[B]`` -> the decoder's whole noise input for that batch."""


# ---------------------------------------------------------------------------------------------
# The numpy steps between the graphs


def durations_from_exp(
    dur_exp: np.ndarray, mask: np.ndarray, length_scale: float = 1.0
) -> np.ndarray:
    """``AcousticModel.durations_from_log`` after its ``exp``: integer frames per symbol from
    ``exp(log_dur)`` (the encoder graph's ``dur_exp`` output), at least one per symbol, zero on
    padding. float32 arithmetic in torch's order and round half to even (as ``torch.round``), so
    for the same ``exp`` values the result is bit for bit torch's. The ``exp`` itself stays in the
    graph: numpy's and torch's ``exp`` differ in the last bit for ~40% of float32 inputs, enough to
    move a frame count that lands on .5."""
    one = np.float32(1.0)
    frames = np.round((dur_exp.astype(np.float32) - one) * np.float32(length_scale))
    frames = np.maximum(frames, one)
    return (frames * mask.astype(np.float32)).astype(np.int64)


def expand(hidden: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``alignment.expand`` in numpy: repeat ``hidden [B, N, C]`` by ``durations [B, N]``, zero-pad to
    the longest total; returns ``(frames [B, T, C], frame_mask [B, T])``."""
    totals = durations.sum(axis=1)
    t_max = int(totals.max()) if totals.size else 0
    frames = np.zeros((hidden.shape[0], t_max, hidden.shape[2]), dtype=hidden.dtype)
    for b in range(hidden.shape[0]):
        frames[b, : totals[b]] = np.repeat(hidden[b], durations[b], axis=0)
    mask = np.arange(t_max)[None, :] < totals[:, None]
    return frames, mask


def noise_shape(spec: Sequence[int | str], batch: int, frames: int) -> tuple[int, ...]:
    """The decoder's noise shape from tts.json's layout (``"batch"``/``"frames"`` placeholders)."""
    sizes = {BATCH_AXIS: batch, FRAMES_AXIS: frames}
    return tuple(sizes[a] if isinstance(a, str) else int(a) for a in spec)


def per_item_noise(spec: Sequence[int | str], seeds: Sequence[int]) -> NoiseFn:
    """Noise drawn per item from ``default_rng(seed)`` for that item's own frame count, zero-padded
    into the batch: an item's noise never depends on the batch it is in."""

    def draw(frames: np.ndarray) -> np.ndarray:
        out = np.zeros(noise_shape(spec, len(frames), int(frames.max())), dtype=np.float32)
        if out.size == 0:
            return out
        for i, (n, seed) in enumerate(zip(frames.tolist(), seeds, strict=True)):
            rng = np.random.default_rng(int(seed) % 2**64)  # default_rng rejects negatives
            item = rng.standard_normal(noise_shape(spec, 1, n), dtype=np.float32)
            dst = tuple(
                i if a == BATCH_AXIS else slice(0, n) if a == FRAMES_AXIS else slice(None)
                for a in spec
            )
            out[dst] = item[tuple(0 if a == BATCH_AXIS else slice(None) for a in spec)]
        return out

    return draw


def noise_item(noise: Any, spec: Sequence[int | str], b: int, n: int) -> Any:
    """Item ``b``'s noise (its first ``n`` frames) from a batch's noise, batch axis kept (size
    1); works on numpy arrays and torch tensors alike."""
    return noise[
        tuple(
            slice(b, b + 1) if a == BATCH_AXIS else slice(0, n) if a == FRAMES_AXIS else slice(None)
            for a in spec
        )
    ]


def _pad_stack(items: Sequence[np.ndarray]) -> np.ndarray:
    """Stack ``[N_i, ...]`` arrays into ``[B, max N, ...]``, zero (False) padded."""
    out = np.zeros((len(items), max(len(x) for x in items), *items[0].shape[1:]), items[0].dtype)
    for i, x in enumerate(items):
        out[i, : len(x)] = x
    return out


# ---------------------------------------------------------------------------------------------
# A loaded bundle


def resolve_providers(providers: Sequence[str]) -> list[str]:
    """Requested execution providers that this onnxruntime build has, CPU always last as fallback.

    An unknown name is a configuration error; a known one this machine lacks (CUDA on a CPU-only
    worker) is skipped with a warning, so one config serves both kinds of worker."""
    import onnxruntime as ort

    known, available = set(ort.get_all_providers()), set(ort.get_available_providers())
    unknown = [p for p in providers if p not in known]
    if unknown:
        raise PluginError(f"unknown onnxruntime provider(s) {unknown}; known: {sorted(known)}")
    chosen = []
    for p in providers:
        if p in available and p not in chosen:
            chosen.append(p)
        elif p not in available:
            log.warning("onnxruntime provider %s is not available here; skipped", p)
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


class OnnxTTS:
    """An export bundle in onnxruntime sessions: symbol ids -> log-mel -> float32 audio."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        providers: Sequence[str] = (CPU,),
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        self.directory = Path(directory)
        manifest_path = self.directory / MANIFEST
        if not manifest_path.is_file():
            raise PluginError(f"{self.directory} is not an ONNX bundle: {MANIFEST} is missing")
        raw = manifest_path.read_bytes()
        self.version = "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
        self.manifest: dict[str, Any] = json.loads(raw)
        m = self.manifest
        if m.get("format") != BUNDLE_FORMAT or m.get("format_version") != BUNDLE_VERSION:
            raise PluginError(
                f"{manifest_path} has format {m.get('format')!r} v{m.get('format_version')!r}; "
                f"expected {BUNDLE_FORMAT!r} v{BUNDLE_VERSION}"
            )
        model = m["model"]
        self.frontend = Frontend.from_dict(model["frontend"])
        self.mel = dict(model["mel"])
        self.sample_rate_hz = int(m["sample_rate_hz"])
        self.hop_length = int(self.mel["hop_length"])
        # The same constant TTSModel.synthesize fills past each clip's end.
        self.log_floor = float(np.log(self.mel["log_floor"]))
        self.language = m.get("language") or DEFAULT_LANGUAGE
        self.length_scale = float(m["length_scale"])
        self.noise_spec: list[int | str] = list(m["noise"]["shape"])
        self.vocoder_kind = m["vocoder"]
        self.context_frames = int(m.get("vocoder_context_frames", 0))
        self.providers = resolve_providers(providers)

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.sessions: dict[str, Any] = {}
        for graph, entry in m["files"].items():
            path = self.directory / entry["file"]
            if not path.is_file():
                raise PluginError(f"bundle {self.directory} lacks {entry['file']}")
            if sha256_file(path) != entry["sha256"]:
                raise PluginError(f"{path} does not match the sha256 recorded in {MANIFEST}")
            self.sessions[graph] = ort.InferenceSession(
                str(path), options, providers=self.providers
            )
        self._decoder_inputs = {i.name for i in self.sessions["decoder"].get_inputs()}
        self._griffin_lim: Any = None

    # -- steps -----------------------------------------------------------------------------------

    def pad(self, sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Padded ids ``[B, N]`` and lengths ``[B]`` (as ``TTSModel.encode_texts``)."""
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        ids = np.full((len(sequences), int(lengths.max())), PAD_ID, dtype=np.int64)
        for i, s in enumerate(sequences):
            ids[i, : len(s)] = s
        return ids, lengths

    def _encode(self, ids: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        return self.sessions["encoder"].run(None, {"ids": ids, "lengths": lengths})

    def mels(
        self,
        sequences: Sequence[Sequence[int]],
        noise: NoiseFn,
        length_scale: float | None = None,
        independent: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log-mel ``[B, n_mels, T]`` (zero past each clip, as ``AcousticModel.infer``) and frames.

        With ``independent``, a graph that the export found not padding-invariant
        (``tts.json``'s ``padding_invariant``) runs item by item on the item's own length, so no
        item depends on its neighbours; without, the padded batch runs as torch runs it."""
        invariant = self.manifest.get("padding_invariant") or {}
        ids, lengths = self.pad(sequences)
        if independent and not invariant.get("encoder", False):
            parts = [
                self._encode(ids[b : b + 1, :n], lengths[b : b + 1]) for b, n in enumerate(lengths)
            ]
            h, mu, dur_exp, mask = (_pad_stack([p[k][0] for p in parts]) for k in range(4))
        else:
            h, mu, dur_exp, mask = self._encode(ids, lengths)
        scale = self.length_scale if length_scale is None else length_scale
        durations = durations_from_exp(dur_exp, mask, scale)
        h_frames, frame_mask = expand(h, durations)
        mu_frames, _ = expand(mu, durations)
        frames = durations.sum(axis=1)
        feeds = {"h": h_frames, "mu": mu_frames, "mask": frame_mask}
        if "noise" in self._decoder_inputs:  # a deterministic decoder's graph has no noise input
            feeds["noise"] = noise(frames)
        decoder = self.sessions["decoder"]
        if not independent or invariant.get("decoder", False):
            (mel,) = decoder.run(None, feeds)
            return mel, frames
        mel = np.zeros((len(frames), int(self.mel["n_mels"]), int(frames.max())), np.float32)
        for b, n in enumerate(frames.tolist()):
            item = {k: v[b : b + 1, :n] for k, v in feeds.items() if k != "noise"}
            if "noise" in feeds:
                item["noise"] = noise_item(feeds["noise"], self.noise_spec, b, n)
            mel[b, :, :n] = decoder.run(None, item)[0][0]
        return mel, frames

    def vocode(self, mel: np.ndarray, frames: np.ndarray, independent: bool) -> list[np.ndarray]:
        """One clip of ``frames[i] * hop`` samples per item.

        ``independent=False`` vocodes exactly as ``TTSModel.synthesize`` (log-floor past each clip,
        the padded batch as one input). ``independent=True`` first appends
        ``vocoder_context_frames`` of log-floor to the batch (HiFi-GAN), or vocodes clip by clip
        (Griffin-Lim, whose iterations spread context further), so a clip's samples do not depend
        on what its neighbours pad it with."""
        mel = mel.copy()
        t = np.arange(mel.shape[-1])
        mel[np.broadcast_to(t[None, None, :] >= frames[:, None, None], mel.shape)] = self.log_floor
        if independent and self.context_frames:
            tail = np.full((*mel.shape[:2], self.context_frames), self.log_floor, np.float32)
            mel = np.concatenate([mel, tail], axis=2)
        if self.vocoder_kind == "hifigan":
            (audio,) = self.sessions["vocoder"].run(None, {"mel": mel})
            batch = [audio[i] for i in range(len(frames))]
        elif independent:
            batch = [
                self._griffin_lim_run(mel[i : i + 1, :, : int(n)])[0] for i, n in enumerate(frames)
            ]
        else:
            batch = list(self._griffin_lim_run(mel))
        return [
            np.ascontiguousarray(np.clip(a[: int(n) * self.hop_length], -1.0, 1.0), np.float32)
            for a, n in zip(batch, frames.tolist(), strict=True)
        ]

    def _griffin_lim_run(self, mel: np.ndarray) -> np.ndarray:
        import torch

        from audio_synth_core.models.features import GriffinLimVocoder, MelConfig

        if self._griffin_lim is None:
            iters = int(self.manifest["model"]["griffin_lim_iters"])
            self._griffin_lim = GriffinLimVocoder(MelConfig.from_dict(self.mel), iters)
        with torch.no_grad():
            return self._griffin_lim(torch.from_numpy(mel)).numpy()

    def synthesize(
        self,
        sequences: Sequence[Sequence[int]],
        seeds: Sequence[int],
        length_scale: float | None = None,
    ) -> list[np.ndarray]:
        """One clip per id sequence; each clip depends only on its ids and seed."""
        if not sequences:
            return []
        mel, frames = self.mels(sequences, per_item_noise(self.noise_spec, seeds), length_scale)
        return self.vocode(mel, frames, independent=True)


_RUNTIME_LOCK = threading.Lock()
_RUNTIMES: dict[tuple[str, str, tuple[str, ...], int], OnnxTTS] = {}


def load_runtime(
    url: str,
    providers: Sequence[str] = (CPU,),
    threads: int = 1,
    storage_options: Mapping[str, Any] | None = None,
) -> OnnxTTS:
    """The bundle at ``url`` in onnxruntime sessions, loaded once per process and setting."""
    key = (
        url,
        json.dumps(dict(storage_options or {}), sort_keys=True, default=str),
        tuple(providers),
        threads,
    )
    with _RUNTIME_LOCK:
        if key not in _RUNTIMES:
            _RUNTIMES[key] = OnnxTTS(fetch_directory(url, storage_options), providers, threads)
        return _RUNTIMES[key]
