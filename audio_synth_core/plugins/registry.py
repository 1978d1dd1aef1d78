"""Entry-point registries: a plug-in is a class registered under a group in pyproject.toml."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from audio_synth_core.errors import PluginError

GENERATORS = "audio_synth.generators"
VALIDATORS = "audio_synth.validators"


@cache
def available(group: str) -> dict[str, Any]:
    """Names -> entry points registered under ``group`` (not loaded yet)."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load(group: str, name: str) -> type:
    """Load the plug-in class registered as ``name``; the error lists what exists."""
    eps = available(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise PluginError(f"unknown plug-in {name!r} in group {group!r}; registered: {known}")
    return eps[name].load()
