"""Reading one audio file by its URI, and telling a problem of that one file (its failed row)
from an infrastructure error (retried).

A validate run reads files nobody here wrote: symlink loops, dangling links, FIFOs, directories
named ``x.wav``, files that vanish between listing and reading. Each is that item's failed row with
a reason naming the file; a connection reset, a timeout or a 5xx propagates so the task retries.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from typing import Any

from fsspec.implementations.local import LocalFileSystem
from fsspec.utils import get_protocol

from audio_synth_core.store.storage import read_uri

# Why one path cannot be read, the same on every try: that item's failed row. Any other OSError
# (connection reset, timeout, a 5xx translated by s3fs) propagates so the task is retried.
_PER_FILE_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
_PER_FILE_ERRNOS = {
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
    errno.ELOOP,
    errno.ENAMETOOLONG,
    errno.ENXIO,
    errno.ENODEV,
}
_NOT_REGULAR = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class UnreadableAudio(Exception):
    """One item's audio cannot be read for a reason a retry will not cure; ``check`` is the stable
    name recorded in ``failed_checks`` (missing_audio, unreadable), ``reason`` names the file."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(reason)
        self.check = check
        self.reason = reason


def is_per_file_error(exc: BaseException) -> bool:
    """True when ``exc`` says one path cannot be read and a retry would fail the same way."""
    return isinstance(exc, OSError) and (
        isinstance(exc, _PER_FILE_ERRORS) or exc.errno in _PER_FILE_ERRNOS
    )


def _local_path(uri: str) -> str | None:
    if get_protocol(uri) not in ("file", "local"):
        return None
    return LocalFileSystem._strip_protocol(uri)


def _read_local(path: str, uri: str) -> bytes:
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer. The type is
    # checked on the opened descriptor, so a path swapped after listing cannot slip past it.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
            raise UnreadableAudio("unreadable", f"cannot read {uri}: it is {kind}, not a file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def _not_found(uri: str, local: str | None) -> str:
    try:  # a link whose target is gone says so: the fix is the link, not the audio
        target = os.readlink(local) if local is not None else None
    except OSError:
        target = None
    detail = f" (a dangling symlink to {target!r})" if target is not None else ""
    if "\ufffd" in uri:  # discovery's stand-in for bytes that are not UTF-8 (datasets._utf8)
        detail += " (the file's name is not valid UTF-8: rename it)"
    return f"audio file not found: {uri}{detail}"


def _transient_cause(exc: FileNotFoundError) -> BaseException | None:
    """The real error behind a FileNotFoundError when it is one a retry may cure: fsspec's HTTP
    filesystem reports every failure (a refused connection, a 503) as "not found", the real
    error as its cause. A cause that is neither (s3fs's NoSuchKey, a 404) leaves it not found."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and not is_per_file_error(cause):
        return cause
    status = getattr(cause, "status", None)
    if isinstance(status, int) and (status >= 500 or status in (408, 429)):
        return cause
    return None


def _os_reason(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason} (a symlink loop)" if exc.errno == errno.ELOOP else reason


def read_audio(uri: str | None, storage_options: Mapping[str, Any] | None = None) -> bytes:
    """Bytes of one item's audio (a local path or any fsspec URL).

    Raises UnreadableAudio for a problem of this one path (missing, a dangling link, a symlink
    loop, a directory, a FIFO or device, permission denied); errors a retry may cure propagate.
    """
    if not uri:
        raise UnreadableAudio("missing_audio", "the item records no audio location")
    local = _local_path(uri)
    try:
        if local is not None:
            return _read_local(local, uri)
        return read_uri(uri, dict(storage_options or {}))
    except FileNotFoundError as exc:
        cause = _transient_cause(exc)
        if cause is not None:  # a ConnectionError: tasks.retry retries it
            raise ConnectionError(f"cannot fetch {uri}: {cause}") from cause
        check = "unreadable" if "\ufffd" in uri else "missing_audio"  # found, not readable
        raise UnreadableAudio(check, _not_found(uri, local)) from None
    except OSError as exc:
        if is_per_file_error(exc):
            raise UnreadableAudio("unreadable", f"cannot read {uri}: {_os_reason(exc)}") from None
        raise
    except ValueError as exc:  # a path no OS accepts (an embedded NUL byte)
        if local is None:
            raise
        raise UnreadableAudio("unreadable", f"cannot read {uri!r}: {exc}") from None
