"""Which task failures are worth a retry: infrastructure, not bugs.

A lost connection, a throttled or failing object store, a timeout: the same call may succeed a
moment later. A bug, a bad input or a missing file fails the same way every time, so retrying only
delays the error and repeats it in the logs; those fail at once and are reported once.
"""

from __future__ import annotations

from typing import Any

from audio_synth_core.store.audio_files import is_per_file_error


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for errors a retry may cure (I/O, network, timeouts), False for everything else.

    OSError covers ConnectionError, TimeoutError, pyarrow's ArrowIOError, s3fs's translated errors
    and distributed's CommClosedError; a missing file, a denied permission, a symlink loop and
    their kin fail the same way on every try (``is_per_file_error``)."""
    return isinstance(exc, OSError) and not (
        is_per_file_error(exc) or isinstance(exc, FileExistsError)
    )


def retry_on_infrastructure(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure is an infrastructure error."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # the failed state re-raises its exception
            exc = raised
    return exc is not None and is_infrastructure_error(exc)
