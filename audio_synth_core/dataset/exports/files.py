"""What every exporter shares: staged output files and the audio facts read from each item.

A ``StagedFile`` is written to a local temporary file and appears in the store only when complete
(a local rename, or one upload to an object store), so an export interrupted midway never leaves a
truncated shard or manifest under its final name. Memory stays bounded: a shard streams to disk.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import IO, Any

import soundfile as sf

from audio_synth_core.audio import AudioDecodeError
from audio_synth_core.store.storage import Store


@dataclass(frozen=True)
class AudioInfo:
    """The facts a manifest needs about one item's audio, from its header (exact, not rounded)."""

    sample_rate_hz: int
    num_samples: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate_hz


def audio_info(data: bytes, source: str) -> AudioInfo:
    try:
        info = sf.info(io.BytesIO(data))
    except sf.SoundFileError as exc:
        raise AudioDecodeError(f"cannot read the audio header of {source}: {exc}") from exc
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


class StagedFile:
    """A file of the store written through a local temporary file; ``commit`` publishes it."""

    def __init__(self, store: Store, rel: str, mode: str = "wb") -> None:
        self.store = store
        self.rel = rel
        if store.is_local:  # next to the target, so the final rename is atomic
            target = store.path(rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self._tmp = f"{target}.tmp-{uuid.uuid4().hex}"
        else:
            fd, self._tmp = tempfile.mkstemp(prefix="export-", suffix=os.path.basename(rel))
            os.close(fd)
        encoding = None if "b" in mode else "utf-8"
        self.handle: IO[Any] = open(self._tmp, mode, encoding=encoding)  # noqa: SIM115 (closed in commit/abort)

    @property
    def local_path(self) -> str:
        return self._tmp

    def commit(self) -> str:
        """Close and publish under the final name; returns the relative path."""
        self.handle.close()
        if self.store.is_local:
            os.replace(self._tmp, self.store.path(self.rel))
        else:
            try:
                self.store.fs.put_file(self._tmp, self.store.path(self.rel))
            finally:
                os.unlink(self._tmp)
        return self.rel

    def abort(self) -> None:
        """Drop the partial file (nothing appears under the final name)."""
        if not self.handle.closed:
            self.handle.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)


class ExportWriter:
    """One output format. The exporter walks the items once, split by split and shard by shard,
    and calls every writer with each item's row, audio bytes and audio facts; a writer keeps only
    its open files (``StagedFile``) and counts."""

    fmt = ""
    needs_bytes = True  # False: the writer only needs AudioInfo (the exporter may skip reading)

    def __init__(self, store: Store, out: str, name: str) -> None:
        self.store = store
        self.out = out
        self.name = name
        self.files: list[str] = []
        self.counts: dict[str, int] = {}
        self._open: list[StagedFile] = []

    def begin_split(self, split: str, n_shards: int) -> None:
        self.counts[split] = 0

    def begin_shard(self, split: str, index: int, n_shards: int) -> None:
        """Called before the items of shard ``index`` (of ``n_shards``) of ``split``."""

    def add(self, split: str, row: dict[str, Any], audio: bytes | None, info: AudioInfo) -> None:
        raise NotImplementedError

    def end_shard(self, split: str) -> None:
        """Called after the last item of the current shard."""

    def end_split(self, split: str) -> None:
        """Called after the last shard of ``split``."""

    def finish(self) -> None:
        """Called once after every split (format-level files such as a README)."""

    def stage(self, rel: str, mode: str = "wb") -> StagedFile:
        staged = StagedFile(self.store, rel, mode)
        self._open.append(staged)
        return staged

    def publish(self, staged: StagedFile) -> None:
        self._open.remove(staged)
        self.files.append(staged.commit())

    def abort(self) -> None:
        for staged in self._open:
            staged.abort()
        self._open.clear()

    def result(self, path: str) -> dict[str, Any]:
        return {"path": path, "files": list(self.files), "counts": dict(self.counts)}
