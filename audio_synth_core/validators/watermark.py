"""The ``watermark`` validator: is a clip marked with this installation's key, with what payload,
and which item does that payload name?

Works on any audio a validate run reads (foreign files included): the key comes from the
environment variable ``key_env`` names, else ``key_file``, else $AUDIO_SYNTH_HOME/keys/
watermark.key (the key is never a parameter: parameters are logged). With ``lookup`` (an output
URL), each payload is mapped through the runs' watermark tables to its item and run.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
import pydantic

from audio_synth_core.plugins.params import StrictParams, parse_params
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store
from audio_synth_core.validators.base import (
    CheckResult,
    Clip,
    MetricField,
    ValidationContext,
    Validator,
)
from audio_synth_core.watermark import THRESHOLD_Z, detect
from audio_synth_core.watermark.keys import load_key
from audio_synth_core.watermark.lookup import resolve


class WatermarkParams(StrictParams):
    key_env: str = "AUDIO_SYNTH_WATERMARK_KEY"
    key_file: str | None = None
    threshold_z: float = pydantic.Field(THRESHOLD_Z, gt=0)
    lookup: str | None = None  # output URL whose runs' tables map payloads to items
    require: bool = False  # fail the check when a clip carries no mark


class WatermarkValidator(Validator):
    """Detects the watermark; optionally maps its payload to the item and run it names."""

    name: ClassVar[str] = "watermark"
    version: ClassVar[str] = "1"
    fields: ClassVar[tuple[MetricField, ...]] = (
        MetricField("watermark_detected", pa.bool_(), "", "the clip carries this key's mark"),
        MetricField(
            "watermark_confidence",
            pa.float64(),
            "",
            "1 - the chance that unmarked audio scores this high (0..1)",
            direction="higher",
            valid_range=(0.0, 1.0),
        ),
        MetricField("watermark_z", pa.float64(), "", "z-score of the mark's sync pattern"),
        MetricField("watermark_payload", pa.int64(), "", "decoded 32-bit payload (when detected)"),
        MetricField("watermark_item_id", pa.string(), "", "item the payload names (lookup)"),
        MetricField("watermark_run_id", pa.string(), "", "run of that item (lookup)"),
    )

    def __init__(self, **params: Any) -> None:
        self.config = parse_params(WatermarkParams, self.name, params, "validator")
        super().__init__(**self.config.model_dump())
        self._key = load_key(self.config.key_env, self.config.key_file)  # fails fast
        self._table: pa.Table | None = None

    def prepare(self, context: ValidationContext) -> None:
        if self.config.lookup and self._table is None:
            store = Store(self.config.lookup)
            tables = [
                store.read_table(layout.watermarks(run_id))
                for run_id in store.list(layout.RUNS)
                if store.exists(layout.watermarks(run_id))
            ]
            self._table = pa.concat_tables(tables) if tables else None

    def measure(self, clip: Clip) -> dict[str, Any]:
        found = detect(clip.audio, clip.sample_rate_hz, self._key, self.config.threshold_z)
        payload, matches = resolve(self._table, found)
        # An item only when the evidence names one (a payload two runs share names none).
        item_id, run_id = (
            (matches[0]["id"], matches[0]["run_id"]) if len(matches) == 1 else (None, None)
        )
        return {
            "watermark_detected": found.detected,
            "watermark_confidence": found.confidence,
            "watermark_z": found.z,
            "watermark_payload": payload,
            "watermark_item_id": item_id,
            "watermark_run_id": run_id,
        }

    def check(self, metrics: Any) -> list[CheckResult]:
        if not self.config.require or metrics.get("watermark_detected"):
            return []
        return [
            CheckResult(
                "watermark_missing",
                metrics.get("watermark_z"),
                self.config.threshold_z,
                "no watermark of this key found",
            )
        ]
