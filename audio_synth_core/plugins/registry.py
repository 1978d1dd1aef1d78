"""Entry-point registries: a plug-in is a class registered under a group in pyproject.toml.

``register`` adds a class under a group for the length of a ``with`` block, without an entry
point: tests use it to show that a new plug-in needs no edit anywhere else. It affects this
process only (Dask worker processes still see the entry points alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from audio_synth_core.errors import PluginError

GENERATORS = "audio_synth.generators"
VALIDATORS = "audio_synth.validators"

# Classes added by ``register``, by group and name; they shadow entry points of the same name.
_REGISTERED: dict[str, dict[str, type]] = {}


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def available(group: str) -> dict[str, Any]:
    """Names -> entry points (not loaded yet) or registered classes under ``group``."""
    return {**_entry_points(group), **_REGISTERED.get(group, {})}


def load(group: str, name: str) -> type:
    """Load the plug-in class registered as ``name``; the error lists what exists."""
    known = available(group)
    if name not in known:
        names = ", ".join(sorted(known)) or "none"
        raise PluginError(f"unknown plug-in {name!r} in group {group!r}; registered: {names}")
    target = known[name]
    return target if isinstance(target, type) else target.load()


@contextmanager
def register(group: str, name: str, cls: type) -> Iterator[type]:
    """Make ``cls`` the plug-in ``name`` of ``group`` inside the ``with`` block, then undo it.

    A name that already exists is shadowed and comes back afterwards. Nested registrations of
    one name undo in reverse order.
    """
    if not isinstance(cls, type):
        raise PluginError(f"plug-in {name!r} must be a class, got {type(cls).__name__}")
    classes = _REGISTERED.setdefault(group, {})
    previous = classes.get(name)
    classes[name] = cls
    try:
        yield cls
    finally:
        if previous is None:
            classes.pop(name, None)
        else:
            classes[name] = previous
