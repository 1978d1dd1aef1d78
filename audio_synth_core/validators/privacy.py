"""Privacy: how closely each output's voice resembles a protected (real) speaker.

Every clip is embedded with resemblyzer's speaker encoder (``audio_synth_core.privacy.speaker``) and scored
by cosine similarity against each protected speaker's centroid (the L2-normed mean of that
speaker's reference embeddings). The clip fails ``privacy_similarity`` when the best score is above
the level's limit: the output could be taken for that person (re-identification risk).

References (``reference_url``, any fsspec URL; a folder, or one embeddings file):
- audio files (.wav .flac .ogg .mp3 .aiff) in a SUBFOLDER per speaker: ``refs/alice/001.flac``
  belongs to speaker ``alice``. Files directly in the folder name their speaker by the part of the
  file name before a double underscore (``alice__001.wav``), or by the whole stem without one.
- precomputed embeddings: ``.npz`` with arrays ``speaker`` (n strings) and ``embedding`` (n x 256),
  or ``.parquet`` with columns ``speaker`` (string) and ``embedding`` (list<float>); rows are
  utterance (or speaker) embeddings made by ``speaker.embed_many``. Use them when the raw voices of
  the protected people must not be stored next to the pipeline.
Both kinds may be mixed; all rows of a speaker are averaged into its centroid. References are
loaded once per process per URL (and re-loaded when the listing changes).

Levels -> cosine limits, measured with resemblyzer on flite voices of recorded speakers (awb, kal,
rms, slt) and espeak-ng voices; clip vs a centroid of 5 other sentences of each reference speaker:
same speaker 0.853-0.963 (n=60, mean 0.918); different speakers 0.389-0.740 (n=765, mean 0.538,
p95 0.669); the same recorded speaker through another engine (flite kal16 vs kal) 0.767-0.868.
- high   0.75: flags every same-speaker clip AND every cross-engine copy of a protected voice;
               0 of 765 different-speaker clips flagged (0.7% would be at 0.72): the strict level.
- medium 0.80: midway between the largest different-speaker score (0.740) and the smallest
               same-speaker score (0.853): ~0.06 margin on both sides; misses a third of the
               cross-engine copies.
- low    0.85: flags only near-certain clones (all same-speaker clips here scored >= 0.853).

Quarantine: with ``quarantine: true`` a clip whose ``max_similarity`` exceeds the limit is
``quarantined`` = True: the pipeline moves its file out of the deliverable output (into a
quarantine prefix) and keeps its metadata row with the failed check, so it is never delivered yet
stays auditable. ``PrivacyValidator.quarantine`` is that rule; this validator moves nothing.

``privacy_similarity`` is declared a flag check (the assessment counts it as a privacy flag, the
gate limits those), and the run report gets a histogram of ``max_similarity`` with the limit.
"""

from __future__ import annotations

import io
import json
import posixpath
import threading
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pydantic

from audio_synth_core.audio import decode
from audio_synth_core.plugins.params import StrictParams, parse_params
from audio_synth_core.privacy import speaker
from audio_synth_core.validators.base import (
    CheckResult,
    Clip,
    MetricField,
    ValidationContext,
    Validator,
)
from audio_synth_core.validators.rules import audio_problem

if TYPE_CHECKING:
    import pandas as pd

SIMILARITY_CHECK = "privacy_similarity"
SIMILARITY_LIMITS: dict[str, float] = {"low": 0.85, "medium": 0.80, "high": 0.75}
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"})
EMBEDDING_EXTENSIONS = frozenset({".npz", ".parquet"})
_SPEAKER_SEPARATOR = "__"


class PrivacyParams(StrictParams):
    reference_url: str = pydantic.Field(min_length=1)
    level: Literal["low", "medium", "high"] = "medium"
    # Explicit cosine limit; overrides ``level`` when set.
    max_similarity: float | None = pydantic.Field(None, gt=0, le=1)
    quarantine: bool = False
    # torch intra-op threads in the worker (None: torch's default of all cores).
    torch_threads: int | None = pydantic.Field(1, ge=1)
    storage_options: dict[str, Any] = pydantic.Field(default_factory=dict)

    @property
    def limit(self) -> float:
        return (
            self.max_similarity
            if self.max_similarity is not None
            else SIMILARITY_LIMITS[self.level]
        )


@dataclass(frozen=True)
class ReferenceSet:
    """Protected speakers: names, unit-length centroids (n, 256), reference rows per speaker."""

    speakers: tuple[str, ...]
    centroids: np.ndarray
    counts: tuple[int, ...]


class ReferenceSetError(ValueError):
    """The reference set cannot be used (unreadable file, bad layout, no speakers)."""


def speaker_of(relative_path: str) -> str:
    """The speaker a reference file belongs to (see the module docstring for the layout)."""
    parts = relative_path.strip("/").split("/")
    if len(parts) > 1:
        return parts[0]
    stem = posixpath.splitext(parts[0])[0]
    return stem.split(_SPEAKER_SEPARATOR, 1)[0] if _SPEAKER_SEPARATOR in stem else stem


def _ext(path: str) -> str:
    return posixpath.splitext(path)[1].lower()


def _read_embedding_file(data: bytes, path: str) -> tuple[list[str], np.ndarray]:
    try:
        names, emb = _parse_embedding_file(data, path)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ReferenceSetError):
            raise
        raise ReferenceSetError(f"cannot read reference embeddings {path}: {exc}") from exc
    if emb.ndim != 2 or emb.shape != (len(names), speaker.EMBEDDING_DIM):
        raise ReferenceSetError(
            f"{path}: expected {len(names)} x {speaker.EMBEDDING_DIM} embeddings, got {emb.shape}"
        )
    return names, emb


def _parse_embedding_file(data: bytes, path: str) -> tuple[list[str], np.ndarray]:
    if _ext(path) == ".npz":
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if "speaker" not in npz or "embedding" not in npz:
                raise ReferenceSetError(f"{path}: needs arrays 'speaker' and 'embedding'")
            names, emb = [str(s) for s in npz["speaker"]], np.asarray(npz["embedding"])
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        if not {"speaker", "embedding"} <= set(table.column_names):
            raise ReferenceSetError(f"{path}: needs columns 'speaker' and 'embedding'")
        names = [str(s) for s in table.column("speaker").to_pylist()]
        emb = np.asarray(table.column("embedding").to_pylist(), dtype=np.float64)
    return names, emb


def _load(fs: Any, root: str, files: list[str]) -> ReferenceSet:
    names: list[str] = []
    rows: list[np.ndarray] = []
    audios, rates, audio_names = [], [], []
    for path in files:
        rel = posixpath.basename(path) if path == root else posixpath.relpath(path, root)
        try:
            data = fs.cat_file(path)
        except OSError as exc:
            raise ReferenceSetError(f"cannot read reference file {path}: {exc}") from exc
        if _ext(path) in EMBEDDING_EXTENSIONS:
            file_names, emb = _read_embedding_file(data, path)
            names.extend(file_names)
            rows.extend(emb)
            continue
        try:
            audio, rate = decode(data)
        except (RuntimeError, ValueError) as exc:  # soundfile's errors derive from these
            raise ReferenceSetError(f"cannot decode reference audio {path}: {exc}") from exc
        audios.append(audio)
        rates.append(rate)
        audio_names.append(speaker_of(rel))
    if audios:
        try:
            emb = speaker.embed_many(audios, rates)
        except speaker.SpeakerEmbeddingError as exc:
            raise ReferenceSetError(f"a reference file has no usable speech: {exc}") from exc
        names.extend(audio_names)
        rows.extend(emb)
    if not names:
        raise ReferenceSetError(
            f"no reference audio ({', '.join(sorted(AUDIO_EXTENSIONS))}) or embeddings "
            f"({', '.join(sorted(EMBEDDING_EXTENSIONS))}) under {root!r}"
        )
    matrix = np.asarray(rows, dtype=np.float64)
    label = np.asarray(names)
    order = tuple(sorted(set(names)))
    centroids = np.stack([speaker.centroid(matrix[label == n]) for n in order])
    counts = tuple(int(np.sum(label == n)) for n in order)
    return ReferenceSet(order, centroids.astype(np.float32), counts)


_CACHE_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str, tuple], ReferenceSet] = {}


def load_references(url: str, storage_options: Mapping[str, Any] | None = None) -> ReferenceSet:
    """Embed (or read) the protected speakers under ``url``; cached per process.

    The cache key includes the file listing (paths and sizes), so an edited reference folder is
    re-embedded while an unchanged one costs one listing call.
    """
    import fsspec

    options = dict(storage_options or {})
    fs, root = fsspec.core.url_to_fs(url, **options)
    if fs.isfile(root):
        listing = {root: fs.info(root)}
    elif fs.isdir(root):
        listing = fs.find(root, detail=True)
    else:
        raise ReferenceSetError(f"reference_url {url!r} does not exist")
    wanted = AUDIO_EXTENSIONS | EMBEDDING_EXTENSIONS
    files = sorted(p for p in listing if _ext(p) in wanted)
    signature = tuple((p, listing[p].get("size")) for p in files)
    key = (url, json.dumps(options, sort_keys=True, default=str), signature)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    refs = _load(fs, root, files)
    with _CACHE_LOCK:
        _CACHE[key] = refs
    return refs


class PrivacyValidator(Validator):
    """Speaker similarity of each clip to protected reference speakers (resemblyzer, cosine)."""

    name: ClassVar[str] = "privacy"
    version: ClassVar[str] = "1"
    fields: ClassVar[tuple[MetricField, ...]] = (
        MetricField(
            "max_similarity",
            pa.float64(),
            "cosine",
            "highest cosine similarity of the clip's speaker embedding to a protected speaker's "
            "centroid (null when the clip has no speech to embed)",
            direction="lower",
            valid_range=(-1.0, 1.0),
        ),
        MetricField(
            "nearest_reference", pa.string(), "", "protected speaker with that highest similarity"
        ),
        MetricField(
            "speaker_embedding",
            pa.list_(pa.float32()),
            "",
            "resemblyzer d-vector of the clip (256 floats, unit length) for clustering and plots",
        ),
        MetricField(
            "privacy_status",
            pa.string(),
            "",
            "ok | no_speech (under 0.3 s voiced: nothing to identify) | unreadable_audio",
        ),
    )
    flag_checks: ClassVar[frozenset[str]] = frozenset({SIMILARITY_CHECK})

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(PrivacyParams, self.name, params, "validator")
        super().__init__(**self.config.model_dump())
        self._references: ReferenceSet | None = None

    @property
    def limit(self) -> float:
        return self.config.limit

    def prepare(self, context: ValidationContext) -> None:
        """Cap torch threads, then load and embed the references (once per process per URL)."""
        self._references = None
        self.references()

    def references(self) -> ReferenceSet:
        """The protected speakers, loaded on first use (measure without prepare works too)."""
        if self._references is None:
            speaker.configure_threads(self.config.torch_threads)
            self._references = load_references(
                self.config.reference_url, self.config.storage_options
            )
        return self._references

    def measure(self, clip: Clip) -> dict[str, Any]:
        (metrics,) = self.measure_many([clip])
        if isinstance(metrics, Exception):
            raise metrics
        return metrics

    def measure_many(self, clips: Sequence[Clip]) -> list[dict[str, Any] | Exception]:
        """``measure`` of each clip, with the speaker encoder run once over all of them."""
        refs = self.references()
        out: list[dict[str, Any] | Exception] = []
        ready: list[tuple[int, np.ndarray]] = []
        for clip in clips:
            try:
                audio = np.asarray(clip.audio)
                if audio_problem(audio, clip.sample_rate_hz) is not None:
                    out.append(self._empty("unreadable_audio"))
                    continue
                ready.append((len(out), speaker.preprocess(audio, clip.sample_rate_hz)))
                out.append({})  # filled below
            except speaker.SpeakerEmbeddingError:
                out.append(self._empty("no_speech"))
            except Exception as exc:  # this clip's recorded error
                out.append(exc)
        if ready:
            embeddings = speaker.embed_preprocessed([wav for _, wav in ready])
            for (i, _), emb in zip(ready, embeddings, strict=True):
                out[i] = self._scored(refs, emb)
        return out

    def _empty(self, status: str) -> dict[str, Any]:
        return {**dict.fromkeys(f.name for f in self.fields), "privacy_status": status}

    @staticmethod
    def _scored(refs: ReferenceSet, emb: np.ndarray) -> dict[str, Any]:
        scores = refs.centroids.astype(np.float64) @ emb.astype(np.float64)
        best = int(np.argmax(scores))
        return {
            "max_similarity": float(scores[best]),
            "nearest_reference": refs.speakers[best],
            "speaker_embedding": emb.astype(np.float32).tolist(),
            "privacy_status": "ok",
        }

    def quarantine(self, metrics: Mapping[str, Any]) -> bool:
        """True when quarantine is on and the clip's ``max_similarity`` is above the limit."""
        value = metrics.get("max_similarity")
        return bool(self.config.quarantine and value is not None and value > self.limit)

    def check(self, metrics: Mapping[str, Any]) -> list[CheckResult]:
        status = metrics.get("privacy_status")
        if status == "no_speech":
            return []  # no voice, nothing to re-identify; the quality checks flag silence
        limit = self.limit
        value = metrics.get("max_similarity")
        if status != "ok" or value is None:
            return [CheckResult(SIMILARITY_CHECK, None, limit, "no speaker similarity: unreadable")]
        if value <= limit:
            return []
        level = "explicit" if self.config.max_similarity is not None else self.config.level
        return [
            CheckResult(
                SIMILARITY_CHECK,
                float(value),
                limit,
                f"speaker similarity {value:.3f} to protected speaker "
                f"{metrics.get('nearest_reference')!r} above the {level} limit {limit:.2f} "
                f"by {value - limit:.3f}",
            )
        ]

    def report_section(self, df: pd.DataFrame) -> tuple[str, str] | None:
        """The distribution of ``max_similarity`` against this validator's limit."""
        if "max_similarity" not in df.columns:
            return None
        import pandas as pd

        from audio_synth_core.reporting.html import histogram_img

        x = pd.to_numeric(df["max_similarity"], errors="coerce").dropna().to_numpy(np.float64)
        if x.size == 0:
            return "Speaker similarity", '<p class="muted">No similarity values.</p>'
        limit = self.limit
        img = histogram_img(
            x, "max cosine similarity to a protected reference speaker", limit=limit
        )
        over = int((x > limit).sum())
        return (
            "Speaker similarity",
            f"{img}<p>{over} of {x.size} items above the limit {limit:g}.</p>",
        )
