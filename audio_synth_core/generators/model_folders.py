"""Model folders for generators that load files (``onnx`` bundles, ``hf-vits`` models): a local
folder is used in place; any other fsspec URL is copied once per process into the local cache
(``cache_root()``). ``directory_digest`` identifies a folder by its content.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audio_synth_core.errors import PluginError

_CHUNK = 1 << 20


def cache_root() -> Path:
    """``$AUDIO_SYNTH_CACHE``, else ``$AUDIO_SYNTH_HOME/cache`` (``.audio-synth/cache``)."""
    if os.environ.get("AUDIO_SYNTH_CACHE"):
        return Path(os.environ["AUDIO_SYNTH_CACHE"])
    return Path(os.environ.get("AUDIO_SYNTH_HOME", ".audio-synth")) / "cache"


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def sha256_file(path: Path) -> str:
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
        digest.update(sha256_file(file).encode())
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
