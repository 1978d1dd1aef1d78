"""Plug-ins built once per worker process and configuration.

Models and reference sets load once, not once per shard. Keys are JSON strings so a worker can
receive a configuration cheaply and the cache can hash it.
"""

from __future__ import annotations

import json
from functools import lru_cache

from audio_synth_core.generators.base import Generator, build_generator
from audio_synth_core.validators.base import Validator, build_validator


@lru_cache(maxsize=4)
def cached_generator(name: str, params_json: str) -> Generator:
    """The generator ``name`` built with ``params_json`` (a JSON object)."""
    return build_generator(name, json.loads(params_json))


@lru_cache(maxsize=4)
def cached_validators(specs_json: str) -> tuple[Validator, ...]:
    """Validators from a JSON list of ``{"name": ..., "params": ...}`` specs."""
    return tuple(build_validator(s["name"], s.get("params")) for s in json.loads(specs_json))
