"""``OnnxGenerator``: the project's own TTS model run from an ONNX export bundle with onnxruntime.

A bundle (written by ``audio_synth_core.models.export.export_onnx``) is a folder with
``encoder.onnx``, ``decoder.onnx``, ``vocoder.onnx`` (absent when the vocoder is Griffin-Lim) and
``tts.json``, which holds everything else synthesis needs: the frontend and its vocabulary, the mel
settings, the model configs, the layout of the decoder's noise input, the length scale, the
vocoder's context and the sha256 of every graph. The bundle's identity (``version``) is the sha256
of ``tts.json``; the graphs are checked against their recorded hashes when loaded.

Between the two acoustic graphs, duration rounding and length regulation run in numpy
(``durations_from_exp``, ``expand``): the same arithmetic as ``AcousticModel.durations_from_log``
(after its ``exp``, which stays in the graph) and ``acoustic.expand``; tests compare them bit for
bit. The length scale is a run-time setting.

Randomness (VAE latents, diffusion noise) enters the decoder as an explicit input. In ``generate``
each request draws its own noise from ``numpy.random.default_rng(seed)`` with its own frame count,
and each clip is vocoded with enough trailing silence (``vocoder_context_frames``) that what follows
it in a padded batch cannot reach it: a clip does not depend on its batch neighbours.

Nothing here imports torch, except the Griffin-Lim vocoder (torchaudio's), used only by bundles
exported from a Griffin-Lim model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from audio_synth_core.errors import GenerationError, PluginError, UnknownVoiceError
from audio_synth_core.generators.base import Generator, SynthesisRequest, VoiceInfo
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
_CHUNK = 1 << 20

NoiseFn = Callable[[np.ndarray], np.ndarray]
"""Per-item frame counts ``[B]`` -> the decoder's whole noise input for that batch."""


# ---------------------------------------------------------------------------------------------
# Fetching bundles (also used by the Hugging Face generator)


def cache_root() -> Path:
    """``$AUDIO_SYNTH_CACHE``, else ``$AUDIO_SYNTH_HOME/cache`` (``.audio-synth/cache``)."""
    if os.environ.get("AUDIO_SYNTH_CACHE"):
        return Path(os.environ["AUDIO_SYNTH_CACHE"])
    return Path(os.environ.get("AUDIO_SYNTH_HOME", ".audio-synth")) / "cache"


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def directory_digest(path: Path) -> str:
    """sha256 over the relative names and contents of every file under ``path`` (sorted)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(_sha256_file(file).encode())
    return digest.hexdigest()


_FETCH_LOCK = threading.Lock()
_FETCHED: dict[tuple[str, str], Path] = {}


def fetch_directory(url: str, storage_options: Mapping[str, Any] | None = None) -> Path:
    """A local folder with the files under ``url``: the folder itself when it is local, else a copy
    in ``cache_root()``, downloaded once per process.

    The copy lands in a folder named after the URL and the content's digest, via a temporary
    folder and a rename, so concurrent processes never see half a copy and a changed remote
    never reuses a stale one."""
    if is_local(url):
        path = Path(url.removeprefix("file://")).expanduser().absolute()
        if not path.is_dir():
            raise PluginError(f"model folder {url!r} does not exist")
        return path
    key = (url, json.dumps(dict(storage_options or {}), sort_keys=True, default=str))
    with _FETCH_LOCK:
        if key in _FETCHED:
            return _FETCHED[key]
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
            files = [f for f in fs.find(root) if not f.endswith("/")]
        except Exception as exc:  # any backend: missing bucket, credentials, network
            raise PluginError(f"cannot list model folder {url!r}: {exc}") from exc
        if not files:
            raise PluginError(f"model folder {url!r} is empty or does not exist")
        url_id = hashlib.sha256(url.encode()).hexdigest()[:16]
        base = cache_root()
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f".{url_id}-{uuid.uuid4().hex}.tmp"
        try:
            prefix = root.rstrip("/") + "/"
            for remote in files:
                target = tmp / remote.removeprefix(prefix)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(fs.cat_file(remote))
            final = base / f"{url_id}-{directory_digest(tmp)[:16]}"
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # not a concurrent copy of the same content
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _FETCHED[key] = final
        return final


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
    """``acoustic.expand`` in numpy: repeat ``hidden [B, N, C]`` by ``durations [B, N]``, zero-pad to
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


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "RuntimeException", "NotImplemented", "EPFail")
    return (MemoryError, *(getattr(state, n) for n in names if hasattr(state, n)))


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
            if _sha256_file(path) != entry["sha256"]:
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


# ---------------------------------------------------------------------------------------------
# The generator

_DEFAULTS: dict[str, Any] = {
    "model_url": None,
    "providers": [CPU],
    "threads": 1,
    "batch_size": 8,
    "length_scale": None,
    "storage_options": None,
}


class OnnxGenerator(Generator):
    """The project's TTS model from an ONNX export bundle (``export_onnx``), on onnxruntime.

    Parameters: ``model_url`` (required) a local folder or any fsspec URL of a bundle (copied to the
    local cache once per process); ``providers`` onnxruntime execution providers, default
    ``["CPUExecutionProvider"]`` (``CUDAExecutionProvider`` is used when asked for and present);
    ``threads`` intra-op threads per session (1); ``batch_size`` requests per forward pass (8);
    ``length_scale`` speaking-time factor, default the bundle's; ``storage_options`` for fsspec.

    One voice, ``default``, in the bundle's language. ``SynthesisRequest.seed`` seeds the request's
    own noise (VAE and diffusion decoders): the same request gives the same audio in any batch.
    """

    name: ClassVar[str] = "onnx"

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(_DEFAULTS))
        if unknown:
            raise TypeError(
                f"unknown onnx parameter(s) {', '.join(unknown)}; known: {', '.join(_DEFAULTS)}"
            )
        merged = {**_DEFAULTS, **params}
        if not isinstance(merged["model_url"], str) or not merged["model_url"]:
            raise TypeError("onnx parameter 'model_url' is required (a folder or fsspec URL)")
        providers = merged["providers"]
        if isinstance(providers, str) or not all(isinstance(p, str) for p in providers):
            raise TypeError(
                f"onnx parameter 'providers' must be a list of names, got {providers!r}"
            )
        merged["providers"] = list(providers)
        for key in ("threads", "batch_size"):
            value = merged[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"onnx parameter {key!r} must be a positive integer, got {value!r}"
                )
        scale = merged["length_scale"]
        if scale is not None and (isinstance(scale, bool) or not float(scale) > 0):
            raise ValueError(f"onnx parameter 'length_scale' must be > 0, got {scale!r}")
        super().__init__(**merged)

    def _runtime(self) -> OnnxTTS:
        p = self.params
        return load_runtime(p["model_url"], p["providers"], p["threads"], p["storage_options"])

    @property
    def version(self) -> str:
        return self._runtime().version

    @property
    def sample_rate_hz(self) -> int:
        return self._runtime().sample_rate_hz

    def voices(self) -> list[VoiceInfo]:
        rt = self._runtime()
        m = rt.manifest
        attributes = {
            "decoder": str(m["decoder"]),
            "vocoder": str(m["vocoder"]),
            "quantization": str((m.get("quantization") or {}).get("weight_type", "none")),
        }
        return [VoiceInfo(name="default", language=rt.language, attributes=attributes)]

    def generate(self, requests: Sequence[SynthesisRequest]) -> list[np.ndarray | Exception]:
        rt = self._runtime()
        out: list[np.ndarray | Exception | None] = [None] * len(requests)
        todo: list[tuple[int, list[int], int]] = []
        for i, request in enumerate(requests):
            try:
                if not request.text or not request.text.strip():
                    raise GenerationError("empty text")
                self.resolve_voice(request.voice or None, request.language)
                ids = rt.frontend.encode(request.text)
                if len(ids) <= 2:  # only the two boundary symbols
                    raise GenerationError(f"nothing speakable in {request.text!r}")
                todo.append((i, ids, request.seed))
            except (GenerationError, UnknownVoiceError) as exc:
                out[i] = exc
        # Similar lengths together: less padding; the order cannot change an item's audio.
        todo.sort(key=lambda item: len(item[1]))
        size = self.params["batch_size"]
        errors = _ort_errors()
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            try:
                audios = rt.synthesize(
                    [ids for _, ids, _ in chunk],
                    [seed for _, _, seed in chunk],
                    self.params["length_scale"],
                )
            except errors as exc:
                for i, _, _ in chunk:
                    out[i] = GenerationError(f"onnxruntime failed on the batch: {exc}")
                continue
            for (i, _, _), audio in zip(chunk, audios, strict=True):
                out[i] = audio
        return out  # type: ignore[return-value]  # every slot is filled above
