"""The one way this project turns content into ids, seeds and run names.

An id is a hash of everything that determines an output, so the same inputs give the same id on
every machine and every attempt (what resume and incremental runs rely on).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

ITEM_ID_CHARS = 20
RUN_ID_CHARS = 12


def digest(*parts: Any) -> str:
    """Hex sha256 of ``parts`` as canonical JSON (sorted keys; other objects by ``str``)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def content_id(*parts: Any) -> str:
    """A short content-derived id for one item (20 hex characters: 80 bits)."""
    return digest(*parts)[:ITEM_ID_CHARS]


def seed_of(*parts: Any) -> int:
    """A non-negative 31-bit seed derived from ``parts``."""
    return int(digest(*parts)[:8], 16) & 0x7FFFFFFF


def stream_digest(strings: Iterable[str], *suffix: Any) -> str:
    """Hex sha256 over many strings fed one by one (a plan's ids: never one big list in memory),
    then ``suffix`` as ``|a|b``."""
    h = hashlib.sha256()
    for s in strings:
        h.update(s.encode())
    h.update("".join(f"|{p}" for p in suffix).encode())
    return h.hexdigest()


def run_id(name: str, hex_digest: str) -> str:
    """``<name>-<12 hex>``: a run's name is readable and still names exactly one plan."""
    return f"{name}-{hex_digest[:RUN_ID_CHARS]}"
