"""Strict parameters for every plug-in (generators, validators, transforms).

A plug-in declares a pydantic model of its parameters; ``parse_params`` builds it and turns every
problem (an unknown key, a wrong type, a value out of range) into one ValueError that names the
plug-in and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic


class StrictParams(pydantic.BaseModel):
    """Base of plug-in parameter models: unknown keys are errors, values are not coerced from
    other types (strings, booleans), and the model is immutable once built."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)


P = TypeVar("P", bound=StrictParams)


def parse_params(
    model: type[P], plugin: str, params: Mapping[str, Any], kind: str = "plug-in"
) -> P:
    """Build ``model`` from ``params``; a ValueError names every unknown or invalid key.

    ``kind`` and ``plugin`` name the plug-in in the message, e.g. ``validator 'quality'``.
    """
    unknown = sorted(set(params) - set(model.model_fields))
    if unknown:
        known = ", ".join(sorted(model.model_fields)) or "none"
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for {kind} "
            f"{plugin!r}; known: {known}"
        )
    try:
        # Strict: "20" is not a number, True is not 1.0; an int is still fine for a float.
        return model.model_validate(dict(params))
    except pydantic.ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in err.errors()
        )
        raise ValueError(f"invalid parameter(s) for {kind} {plugin!r}: {problems}") from None
