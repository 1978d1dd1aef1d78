"""Large deliverables written and read as streams, never as one bytes object.

``Store.write_bytes`` needs the whole file in memory; a 2-hour master does not fit that model.
Here a file is written to a local temporary path (next to the target on a local store, so the
rename is atomic; in the system temp folder for an object store, then uploaded in one go), and
only published when complete: a killed run never leaves a half-written deliverable visible.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Any

HASH_BLOCK = 1 << 20


@contextlib.contextmanager
def staged_file(store: Any, rel: str, suffix: str = "") -> Iterator[str]:
    """A local path to write ``rel`` to; published to the store when the block exits cleanly,
    removed when it raises. ``suffix`` keeps the extension (encoders pick formats by it)."""
    if store.is_local:
        target = store.path(rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Named like Store's own temporary files (``*.tmp-*``) so a killed run's leftovers are
        # recognised and cleaned the same way.
        tmp = f"{target}.tmp-{uuid.uuid4().hex}{suffix}"
    else:
        fd, tmp = tempfile.mkstemp(prefix="audio-synth-", suffix=suffix)
        os.close(fd)
    try:
        yield tmp
        if store.is_local:
            os.replace(tmp, target)
        else:
            store.fs.put_file(tmp, store.path(rel))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


@contextlib.contextmanager
def open_for_reading(store: Any, rel: str) -> Iterator[str | IO[bytes]]:
    """A local path (local store) or an open, seekable binary file (object store) of ``rel``."""
    if store.is_local:
        path = store.path(rel)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"not found: {store.uri(rel)}")
        yield path
        return
    with store.fs.open(store.path(rel), "rb") as fh:
        yield fh


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_BLOCK):
            h.update(chunk)
    return h.hexdigest()


def copy_to_local(store: Any, rel: str, path: str) -> None:
    """Stream ``rel`` into the local file ``path`` (for tools that need a real file)."""
    with open_for_reading(store, rel) as source:
        if isinstance(source, str):
            shutil.copyfile(source, path)
        else:
            with open(path, "wb") as out:
                shutil.copyfileobj(source, out, HASH_BLOCK)
