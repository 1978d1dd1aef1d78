"""How credentials reach a flow without entering Prefect's database.

Prefect stores every flow run's parameters (top-level flows and subflows alike) in its database and
shows them in its UI, so a parameter must never hold a credential:

- A config given as a YAML path (the CLI, ``prefect.yaml`` deployments) travels as the path; the
  flow reads the file itself.
- A config given as a mapping or model (``flows.api.run_catalog(dict)``) is handed over in-process:
  the API registers the real value with :func:`handoff` and passes its redacted copy as the
  parameter; the flow calls :func:`restore` on what it received and gets the real value back. A
  redacted config that was not handed over (a re-run of a stored flow run) fails with a clear error
  instead of running with ``***`` as a password.
- Subflows receive stores and configs wrapped in :class:`Sealed`: pickled whole to Dask workers,
  which need the credentials, but JSON-encoded (what Prefect stores) as their redacted view.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, model_serializer

from audio_synth_core.config.secrets import collect_secrets, has_redacted, redact, redact_text
from audio_synth_core.errors import ConfigError

T = TypeVar("T")

# Real values handed over by the API, keyed by their redacted JSON; a stack per key, so nested or
# repeated hand-overs of the same config unwind correctly.
_HANDED: dict[str, list[Any]] = {}
_LOCK = threading.Lock()


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def public_view(value: Any) -> Any:
    """What may be shown of ``value``: JSON-like and redacted (a Store: its URL and options)."""
    return redact(_jsonable(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    # Objects that pickle as a small public state (Store: url + storage_options) show that state.
    state = value.__getstate__() if hasattr(value, "__getstate__") else None
    if isinstance(state, dict) and state and all(not str(k).startswith("_") for k in state):
        return {"type": type(value).__name__} | {str(k): _jsonable(v) for k, v in state.items()}
    return f"<{type(value).__name__}>"


@contextlib.contextmanager
def handoff(value: T) -> Iterator[T | Any]:
    """Register ``value`` for :func:`restore` in this process; yield its redacted copy (the
    flow parameter). A value without credentials is yielded unchanged."""
    public = public_view(value) if isinstance(value, Mapping | BaseModel) else value
    if isinstance(value, str):
        public = redact_text(value)
    if public == value:
        yield value
        return
    key = _key(public)
    with _LOCK:
        _HANDED.setdefault(key, []).append(value)
    try:
        yield public
    finally:
        with _LOCK:
            stack = _HANDED[key]
            stack.pop()
            if not stack:
                del _HANDED[key]


def restore(value: T) -> T:
    """The real value behind a redacted flow parameter (or ``value`` itself when it holds no
    redacted credentials); a redacted value nobody handed over is a ConfigError."""
    if isinstance(value, str | Mapping):
        with _LOCK:
            stack = _HANDED.get(_key(value))
            if stack:
                return stack[-1]
    if isinstance(value, Mapping):
        missing = has_redacted(value)
        if missing:
            raise ConfigError(
                f"the configuration holds redacted credentials ({', '.join(missing)}): a flow "
                "run's stored parameters never hold secrets; pass a config file path or call "
                "flows.api, with credentials in the file or the environment"
            )
    return value


def secrets_of(*values: Any) -> set[str]:
    """Credential strings inside the given configs/URLs (to scrub logs and error messages)."""
    found: set[str] = set()
    for value in values:
        found |= collect_secrets(_jsonable(value))
    return found


class Sealed(BaseModel):
    """A subflow parameter that carries credentials: the real value in-process and pickled to
    Dask workers, its redacted view wherever it is serialized to JSON (Prefect's database)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    value: Any

    @model_serializer(mode="plain")
    def _public(self) -> Any:
        return public_view(self.value)


def seal(value: Any) -> Sealed:
    return Sealed(value=value)
