"""Scrubbing secrets out of what a run in this process logs or raises."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from audio_synth_core.config.secrets import RedactingFilter, redact_text
from flows.credentials import secrets_of

# Loggers whose handlers print or ship a run's logs (console, Prefect's API log handler).
_LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "flows", "audio_synth_core")


@contextlib.contextmanager
def redacting(*configs: Any) -> Iterator[None]:
    """While a flow runs in this process: log records and the message of a raised exception
    carry no credential of ``configs`` (nor any secret environment variable's value)."""
    secrets = secrets_of(*configs)
    handlers = {h for name in _LOGGERS for h in logging.getLogger(name).handlers}
    log_filter = RedactingFilter(secrets)
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield
    except BaseException as exc:
        # The CLI prints str(exc), which is built from args for our errors and fsspec's/botocore's.
        with contextlib.suppress(AttributeError, TypeError):
            exc.args = tuple(redact_text(a, secrets) if isinstance(a, str) else a for a in exc.args)
        raise
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)
