"""Object storage through fsspec: a local folder, s3:// or any fsspec URL.

Writes are atomic: a local file is written under a temporary name and renamed; an object store gets
one PUT of the complete bytes. So a file that exists is complete, which is what resume relies on.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from audio_synth_core.errors import StorageError


class Store:
    """A root URL plus the fsspec filesystem under it. Picklable (the filesystem is rebuilt)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/") if "://" in url else os.path.abspath(url)
        self.storage_options = dict(storage_options or {})
        self._fs: fsspec.AbstractFileSystem | None = None
        self._root = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["storage_options"])

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            self._fs, self._root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return self._fs

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    def path(self, rel: str) -> str:
        _ = self.fs
        return f"{self._root.rstrip('/')}/{rel}" if rel else self._root

    def uri(self, rel: str) -> str:
        """Full URL of ``rel`` (what goes into metadata)."""
        return f"{self.url}/{rel}"

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def list(self, rel: str) -> list[str]:
        """Names (not paths) directly under ``rel``; empty when it does not exist."""
        try:
            entries = self.fs.ls(self.path(rel), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        target = self.path(rel)
        if self.is_local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.tmp-{uuid.uuid4().hex}"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        else:
            self.fs.pipe_file(target, data)

    def move(self, src_rel: str, dst_rel: str) -> None:
        """Rename within the store (a copy + delete on object stores)."""
        target = self.path(dst_rel)
        if self.is_local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        self.fs.mv(self.path(src_rel), target)

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def write_table(self, rel: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.write_bytes(rel, buf.getvalue())

    def read_table(self, rel: str) -> pa.Table:
        return pq.read_table(io.BytesIO(self.read_bytes(rel)))

    def read_tables(self, rel_dir: str) -> pa.Table | None:
        """All Parquet parts under ``rel_dir`` concatenated (schemas unified), or None."""
        parts = [n for n in self.list(rel_dir) if n.endswith(".parquet")]
        if not parts:
            return None
        tables = [self.read_table(f"{rel_dir}/{n}") for n in parts]
        return pa.concat_tables(tables, promote_options="default")

    def check_writable(self) -> None:
        """Fail early, naming the URL, when outputs cannot be written there."""
        probe = f"_probe/{uuid.uuid4().hex}"
        try:
            self.write_bytes(probe, b"ok")
            self.fs.rm(self.path(probe))
        except Exception as exc:
            raise StorageError(f"cannot write to output {self.url!r}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "NoSuchBucket" in text or "does not exist" in text.lower():
        return f"bucket or folder does not exist ({text})"
    return text


def read_uri(uri: str, storage_options: dict[str, Any] | None = None) -> bytes:
    """Bytes of one file given by its full URL or local path (audio named in metadata)."""
    with fsspec.open(uri, "rb", **(storage_options or {})) as fh:
        return fh.read()
