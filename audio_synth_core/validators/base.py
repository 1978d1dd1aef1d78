"""The validator interface shared by quality, intelligibility, privacy and delivery checks.

A validator is built once per worker process from a JSON-serializable parameter dict (thresholds
included), prepared once per shard with a ``ValidationContext`` (e.g. the run's texts, to build a
language model), then measures each ``Clip`` into a flat dict of metrics and checks those metrics
against its thresholds. Metrics become Parquet columns; ``fields`` gives their types and units.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

from audio_synth_core.errors import PluginError
from audio_synth_core.plugins import registry as plugins


Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricField:
    """One metric column and what the rest of the pipeline needs to know about it.

    ``direction`` says which way is better (comparison tables, promotion rules, report samples);
    ``valid_range`` bounds the values the data contract accepts (None: unbounded on that side);
    ``sample_priority`` makes the metric a candidate for ranking report samples (lower first).
    """

    name: str
    type: pa.DataType
    unit: str
    description: str
    direction: Direction | None = None
    valid_range: tuple[float | None, float | None] | None = None
    sample_priority: int | None = None

    def to_arrow(self) -> pa.Field:
        meta = {"unit": self.unit, "description": self.description}
        return pa.field(self.name, self.type, nullable=True, metadata=meta)


@dataclass(frozen=True)
class Clip:
    """One decoded item: float32 mono audio in [-1, 1] plus what is known about it."""

    id: str
    audio: np.ndarray
    sample_rate_hz: int
    text: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """A failed check: which rule, the measured value, the limit, and by how much it missed."""

    check: str
    value: float | None
    limit: float | None
    message: str


@dataclass
class ValidationContext:
    """What a validator may need beyond one clip: every text of the run, reference URLs, scratch."""

    texts: Sequence[str] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


class Validator(ABC):
    """Base class of every validator plug-in (entry-point group ``audio_synth.validators``)."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    fields: ClassVar[tuple[MetricField, ...]] = ()

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    def prepare(self, context: ValidationContext) -> None:  # noqa: B027 - optional hook
        """Per-shard set-up (load a model once, build a language model from the run's texts)."""

    @abstractmethod
    def measure(self, clip: Clip) -> dict[str, Any]:
        """Metrics of one clip, keyed by the names in ``fields`` (None where undefined)."""

    def check(self, metrics: Mapping[str, Any]) -> list[CheckResult]:
        """Failed checks for these metrics against this validator's thresholds (none by default)."""
        return []

    def quarantine(self, metrics: Mapping[str, Any]) -> bool:
        """True when the item must be withheld from the deliverable output (e.g. a privacy risk)."""
        return False


def build_validator(name: str, params: Mapping[str, Any] | None = None) -> Validator:
    """Build the validator registered as ``name`` with ``params``."""
    cls = plugins.load(plugins.VALIDATORS, name)
    if not (isinstance(cls, type) and issubclass(cls, Validator)):
        raise PluginError(f"validator {name!r} does not subclass audio_synth_core Validator")
    return cls(**dict(params or {}))


def registered_fields() -> dict[str, MetricField]:
    """Every metric field a registered validator declares, by column name (first one wins).

    Read from the classes, so nothing is built: the contract, the assessment, the report and the
    comparison learn about a new validator's metrics from its registration alone.
    """
    out: dict[str, MetricField] = {}
    for name in sorted(plugins.available(plugins.VALIDATORS)):
        for f in plugins.load(plugins.VALIDATORS, name).fields:
            out.setdefault(f.name, f)
    return out
