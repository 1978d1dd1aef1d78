"""Object storage through fsspec: a local folder, s3:// or any fsspec URL.

Writes are atomic: a local file is written under a temporary name and renamed; an object store gets
one PUT of the complete bytes. So a file that exists is complete, which is what resume relies on.

Object stores fail transiently (5xx, throttling, dropped connections): botocore retries those with
backoff (``S3_RETRIES`` unless the user's ``config_kwargs`` say otherwise), and whatever still fails
reaches the caller as an ``OSError`` (a ``ConnectionError`` for a lost endpoint), which the shard
tasks retry (``tasks/retry.py``). Denied access and a missing bucket are not transient: they fail at
once, and ``check_writable`` turns them into a ``StorageError`` naming the URL before any work.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from audio_synth_core.config.secrets import collect_secrets, redact_text
from audio_synth_core.errors import StorageError

OBJECT_STORE_PROTOCOLS = ("s3", "s3a")
# botocore "standard" mode retries 500/502/503/504, SlowDown/Throttling and dropped or refused
# connections with jittered exponential backoff (capped at 20 s): 10 retries (botocore's
# ``max_attempts`` counts retries, not the first request) ride out about a minute of trouble. PUT and GET of whole objects are idempotent, so a retry never half-writes.
S3_RETRIES = {"max_attempts": 10, "mode": "standard"}
# The pre-flight check answers in seconds: a 403 or a missing bucket is never retried anyway,
# and an unreachable endpoint should not cost a minute of backoff (2 retries: 2.4 s measured).
CHECK_RETRIES = {"max_attempts": 2, "mode": "standard"}
CHECK_CONNECT_TIMEOUT_S = 3
# Named like a killed atomic write (``*.tmp-*``), so a probe a killed check left is cleaned too.
PROBE_NAME = ".write-probe.tmp-"


def object_store_options(
    url: str, storage_options: dict[str, Any], *, fail_fast: bool = False
) -> dict[str, Any]:
    """``storage_options`` with the retry configuration for object stores filled in (the user's own
    ``config_kwargs["retries"]`` wins, except in the quick ``fail_fast`` check)."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol not in OBJECT_STORE_PROTOCOLS:
        return dict(storage_options)
    config = dict(storage_options.get("config_kwargs") or {})
    if fail_fast:
        config["retries"] = dict(CHECK_RETRIES)
        config["connect_timeout"] = min(
            config.get("connect_timeout", CHECK_CONNECT_TIMEOUT_S), CHECK_CONNECT_TIMEOUT_S
        )
    else:
        config.setdefault("retries", dict(S3_RETRIES))
    return {**storage_options, "config_kwargs": config}


class Store:
    """A root URL plus the fsspec filesystem under it. Picklable (the filesystem is rebuilt)."""

    def __init__(
        self, url: str, storage_options: dict[str, Any] | None = None, *, fail_fast: bool = False
    ) -> None:
        self.url = url.rstrip("/") if "://" in url else os.path.abspath(url)
        self.storage_options = dict(storage_options or {})
        self._fail_fast = fail_fast
        self._fs: fsspec.AbstractFileSystem | None = None
        self._root = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["storage_options"])

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            options = object_store_options(
                self.url, self.storage_options, fail_fast=self._fail_fast
            )
            self._fs, self._root = fsspec.core.url_to_fs(self.url, **options)
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
        with _connection_errors(self.url):
            return self.fs.exists(self.path(rel))

    def list(self, rel: str) -> list[str]:
        """Names (not paths) directly under ``rel``; empty when it does not exist."""
        try:
            with _connection_errors(self.url):
                entries = self.fs.ls(self.path(rel), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def files_under(self, rel: str) -> list[str]:
        """Paths (relative to the root) of every file under ``rel`` at any depth, sorted; empty
        when it does not exist."""
        root = self.path("").rstrip("/")
        try:
            with _connection_errors(self.url):
                found = self.fs.find(self.path(rel))
        except FileNotFoundError:
            return []
        return sorted(p[len(root) + 1 :] if p.startswith(f"{root}/") else p for p in found)

    def read_bytes(self, rel: str) -> bytes:
        with _connection_errors(self.url):
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
            with _connection_errors(self.url):
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
        """Fail early and quickly (seconds), naming the URL, when outputs cannot be written there:
        a missing bucket or folder, denied access (403), missing credentials, an unknown protocol,
        an unreachable endpoint. Writes one small probe at the root and removes it again, along
        with any local folders it had to create (a check leaves nothing behind)."""
        checker = Store(self.url, self.storage_options, fail_fast=True)
        probe = f"{PROBE_NAME}{uuid.uuid4().hex}"
        created = _first_missing_dir(self.path("")) if self.is_local else None
        try:
            checker.write_bytes(probe, b"ok")
            _remove_probe(checker, probe)
        except Exception as exc:
            raise storage_error(self.url, exc, self.storage_options) from None
        finally:
            if created:
                _remove_empty_dirs(self.path(""), created)


def storage_error(
    url: str, exc: BaseException, storage_options: dict[str, Any] | None = None
) -> StorageError:
    """A ``StorageError`` naming ``url`` and what is wrong there, in words a user can act on
    (credentials in the URL, the options or the environment replaced by ``***``)."""
    message = f"cannot write to output {url!r}: {describe_error(exc)}"
    return StorageError(redact_text(message, collect_secrets([url, storage_options or {}])))


def describe_error(exc: BaseException) -> str:
    """What a storage exception means: denied, missing bucket or folder, no credentials, unknown
    protocol, unreachable; the original text follows in parentheses."""
    text = str(exc) or type(exc).__name__
    name = type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, PermissionError) and exc.errno is not None:  # a local folder (EACCES)
        return f"permission denied ({text})"
    if isinstance(exc, PermissionError) or "accessdenied" in lowered or "access denied" in lowered:
        return f"access denied: check the credentials and the bucket's policy ({text})"
    if "nosuchbucket" in lowered or "bucket does not exist" in lowered:
        return f"the bucket does not exist ({text})"
    if isinstance(exc, FileNotFoundError) or "does not exist" in lowered:
        return f"bucket or folder does not exist ({text})"
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return f"a file is in the way of the output folder ({text})"
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return f"no credentials: set them in output.storage_options or the environment ({text})"
    if "protocol not known" in lowered or ("protocol" in lowered and isinstance(exc, ValueError)):
        return f"unknown URL protocol ({text})"
    if isinstance(exc, ConnectionError) or _is_connection_error(exc):
        return f"cannot reach the storage endpoint ({text})"
    return text


def _is_connection_error(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # no object-store client installed: nothing to translate
        return False
    return isinstance(exc, (BotoConnectionError, HTTPClientError))


@contextlib.contextmanager
def _connection_errors(url: str) -> Iterator[None]:
    """Re-raise an endpoint that stays unreachable after the client's own retries as a
    ``ConnectionError`` (an OSError), which the shard tasks know to retry; botocore's own
    connection errors are not OSErrors."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:
        if _is_connection_error(exc):
            raise ConnectionError(f"{url}: {exc}") from exc
        raise


def _remove_probe(store: Store, probe: str) -> None:
    # Write-only credentials: the probe stays, named like a stale temporary file.
    with contextlib.suppress(PermissionError):
        store.fs.rm(store.path(probe))


def _first_missing_dir(path: str) -> str | None:
    """The outermost folder of ``path`` that does not exist yet (what a write would create)."""
    missing = None
    current = os.path.abspath(path)
    while not os.path.exists(current):
        missing = current
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return missing


def _remove_empty_dirs(path: str, stop: str) -> None:
    """Remove ``path`` and its parents up to and including ``stop`` while they are empty."""
    current = os.path.abspath(path)
    while True:
        try:
            os.rmdir(current)
        except OSError:
            return  # not empty (someone else writes there) or already gone
        if current == stop:
            return
        current = os.path.dirname(current)


def read_uri(uri: str, storage_options: dict[str, Any] | None = None) -> bytes:
    """Bytes of one file given by its full URL or local path (audio named in metadata)."""
    options = object_store_options(uri, dict(storage_options or {}))
    with fsspec.open(uri, "rb", **options) as fh:
        return fh.read()
