"""The validator interface shared by quality, intelligibility, privacy and delivery checks.

A validator is built once per worker process from a JSON-serializable parameter dict (thresholds
included), prepared once per shard with a ``ValidationContext`` (e.g. the run's texts, to build a
language model), then measures each ``Clip`` into a flat dict of metrics and checks those metrics
against its thresholds. Metrics become Parquet columns; ``fields`` gives their types and units.

A validator also carries what the rest of the pipeline needs to know about it, so adding one
edits nothing central: each ``MetricField`` says which way is better, which values are valid
(the data contract) and whether it ranks report samples; ``flag_checks`` names the checks that
flag a privacy risk (counted by the assessment, limited by the gate); ``report_section`` adds
its own section to the run report.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

from audio_synth_core.errors import PluginError
from audio_synth_core.plugins import registry as plugins

if TYPE_CHECKING:
    import pandas as pd

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricField:
    """One metric column and what the rest of the pipeline needs to know about it.

    ``direction`` says which way is better (comparison tables, promotion rules, report samples);
    leave it None where neither is (levels, durations). ``valid_range`` bounds the values the data
    contract accepts: what the metric can take at all, not a quality threshold (None: unbounded on
    that side). ``sample_priority`` makes the metric a candidate for ranking report samples: the
    present metric with the lowest priority ranks them, worst end first by ``direction`` (lowest
    values first when it has none).
    """

    name: str
    type: pa.DataType
    unit: str
    description: str
    direction: Direction | None = None
    valid_range: tuple[float | None, float | None] | None = None
    sample_priority: int | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower", None):
            raise ValueError(f"metric {self.name!r}: direction must be higher, lower or None")
        if self.valid_range is not None:
            lo, hi = self.valid_range
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"metric {self.name!r}: valid_range {lo}..{hi} is empty")

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
    # Checks whose failure flags a privacy risk (the output could be taken for a real person):
    # the assessment counts the items failing any of them as ``privacy_flags``.
    flag_checks: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    def prepare(self, context: ValidationContext) -> None:  # noqa: B027 - optional hook
        """Per-shard set-up (load a model once, build a language model from the run's texts)."""

    @abstractmethod
    def measure(self, clip: Clip) -> dict[str, Any]:
        """Metrics of one clip, keyed by the names in ``fields`` (None where undefined)."""

    def measure_many(self, clips: Sequence[Clip]) -> list[dict[str, Any] | Exception]:
        """Metrics of each clip, in order; a clip whose measuring raised gets its exception.

        Validators that batch work across clips (one model call for many) override this; the
        result keeps per-clip failure isolation either way.
        """
        out: list[dict[str, Any] | Exception] = []
        for clip in clips:
            try:
                out.append(self.measure(clip))
            except Exception as exc:  # this clip's recorded error, not the batch's
                out.append(exc)
        return out

    def check(self, metrics: Mapping[str, Any]) -> list[CheckResult]:
        """Failed checks for these metrics against this validator's thresholds (none by default)."""
        return []

    def quarantine(self, metrics: Mapping[str, Any]) -> bool:
        """True when the item must be withheld from the deliverable output (e.g. a privacy risk)."""
        return False

    def report_section(self, df: pd.DataFrame) -> tuple[str, str] | None:
        """This validator's own section of the run report, from the run's items and metrics.

        ``(title, html)``, or None for no section (the default). The HTML is inserted as is:
        build it with ``audio_synth_core.reporting.html``, which escapes every value.
        """
        return None


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
    for cls in _registered_classes():
        for f in cls.fields:
            out.setdefault(f.name, f)
    return out


def registered_flag_checks() -> frozenset[str]:
    """Every check a registered validator declares in ``flag_checks``."""
    return frozenset().union(*(cls.flag_checks for cls in _registered_classes()))


def _registered_classes() -> list[type[Validator]]:
    return [
        plugins.load(plugins.VALIDATORS, name)
        for name in sorted(plugins.available(plugins.VALIDATORS))
    ]
