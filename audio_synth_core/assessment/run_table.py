"""A run's items and metrics as the run-level assessment needs them: numbers and labels only.

``read_run`` reads a stored run a few parts at a time (``runs.iter_items``: items joined with
their validation metrics, attributes flattened) in a single pass, and of each batch keeps:

- numbers as float64 and verdicts as booleans (the metrics: at most 8 bytes an item and column),
  in arrays preallocated from the parts' row counts (Parquet footers) and filled as parts pass;
- string columns with few distinct values (status, voice, language, failed checks, the voice
  attributes) as categoricals: a small code per item, each value stored once; the failure
  reason ``error`` as its kind (``run_report.error_kind``), the only part of it a count needs;
- none of the per-item strings (ids, texts, URIs, hashes, JSON): the few rows a report shows
  are kept as they pass (the first flagged items) or read again by position (sample players).

The same pass feeds the data contract, validated by Great Expectations one chunk at a time
(``contract_parts``), so no step holds a whole run's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from audio_synth_core.assessment.contract import DEFAULT_MAX_DURATION_S, ContractResult
from audio_synth_core.assessment.contract_parts import CHUNK_ROWS, check_contract_parts
from audio_synth_core.assessment.fairness import flatten_attributes
from audio_synth_core.pipeline import runs, stats
from audio_synth_core.reporting.run_report import (
    ERROR_KIND,
    FLAGGED_COLUMNS,
    MAX_FLAGGED_JSON,
    error_kind,
    flagged_mask,
)
from audio_synth_core.store import layout
from audio_synth_core.store.storage import Store

# One value per item (or nearly): never kept for the whole run.
PER_ITEM = frozenset(
    {
        *("id", "catalog_id", "text", "audio_uri", "audio_path", "sha256", "error"),
        *("generator_params", "attributes", "provenance", "created_at", "check_messages"),
        *("validation_error", "asr_text"),
    }
)
# A string column with more distinct values than this is free text, not a label: it is dropped
# (fairness attributes are kept whatever their count: they were asked for).
MAX_LABELS = 1000


def located(df: pd.DataFrame) -> np.ndarray | None:
    """Items whose audio can be found (``audio_path`` or ``audio_uri`` set); None: no URIs."""
    if "audio_uri" not in df.columns:
        return None
    found = df["audio_uri"].notna()
    if "audio_path" in df.columns:
        found |= df["audio_path"].notna()
    return found.to_numpy(dtype=bool)


@dataclass
class RunTable:
    """One row per item of a run, bounded by its numbers, plus the few rows a report shows."""

    frame: pd.DataFrame  # numbers and labels (categoricals); attributes flattened
    flagged: pd.DataFrame  # the first MAX_FLAGGED_JSON flagged items, report columns
    flagged_total: int
    located: np.ndarray | None  # see ``located``
    attribute_columns: list[str]  # columns only the flattened attributes brought
    rows: Callable[[Sequence[int]], pd.DataFrame]  # whole rows at these positions, in order

    @property
    def report_frame(self) -> pd.DataFrame:
        """The frame as the run report reads it: a number only the flattened attributes brought
        is a fairness breakdown's metric, not one of the report's (a view: nothing is copied)."""
        numeric = [c for c in self.attribute_columns if is_numeric_dtype(self.frame[c])]
        return self.frame.drop(columns=numeric) if numeric else self.frame

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> RunTable:
        """A table over rows already in memory (``df`` as ``runs.read_items`` gives it)."""
        flat = flatten_attributes(df) if "attributes" in df.columns else df
        mask = flagged_mask(df)
        return cls(
            frame=flat,
            flagged=df.loc[mask, [c for c in FLAGGED_COLUMNS if c in df.columns]],
            flagged_total=int(mask.sum()),
            located=located(df),
            attribute_columns=[c for c in flat.columns if c not in df.columns],
            rows=lambda positions: df.iloc[list(positions)],
        )


class _Column:
    """One kept column of the whole run, preallocated and filled part by part.

    Numbers are float64 (NaN: null), verdicts int8 (-1: null), labels int32 codes into
    ``labels`` (-1: null). The kind comes from the first part that tells (an all-null part of no
    dtype does not); a column with labels in any part holds labels, as one frame would."""

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self.kind: str | None = None  # "number", "bool" or "label"
        self.data: np.ndarray | None = None
        self.labels: dict[Any, int] = {}
        self.integral = True  # every number so far came from an integer column

    def add(self, rows: slice, values: Any, kind: str | None) -> None:
        if kind is None:
            return  # all null: stays null
        if self.kind is None:
            self.kind = kind
            fill, dtype = {"number": (np.nan, np.float64), "bool": (-1, np.int8)}.get(
                kind, (-1, np.int32)
            )
            self.data = np.full(self.n_rows, fill, dtype)
        elif kind != self.kind:  # mixed kinds: labels win, numbers and verdicts become numbers
            self._convert("label" if "label" in (kind, self.kind) else "number")
        if kind == "number":
            self.integral = self.integral and pd.api.types.is_integer_dtype(values.dtype)
        if self.kind == "label":
            self.data[rows] = self._encode(values)
        elif self.kind == "bool":
            self.data[rows] = pd.array(values, dtype="boolean").to_numpy("int8", na_value=-1)
        else:
            self.data[rows] = pd.array(values).to_numpy(np.float64, na_value=np.nan)

    def _encode(self, values: Any) -> np.ndarray:
        codes, uniques = pd.factorize(values)  # null -> -1
        known = [self.labels.setdefault(u, len(self.labels)) for u in uniques]
        return np.array([*known, -1], dtype=np.int32)[codes]

    def _convert(self, kind: str) -> None:
        """The values so far as ``kind`` (rare: a column whose parts disagree)."""
        so_far = self.series()
        if self.kind == "number" and self.integral:  # 30 stays "30" next to strings, not "30.0"
            so_far = so_far.astype("Int64")
        self.kind, self.labels = kind, {}
        if kind == "label":
            self.data = self._encode(so_far.astype(object).to_numpy())
        else:
            self.data = so_far.astype("Float64").to_numpy(np.float64, na_value=np.nan)

    def series(self) -> pd.Series:
        if self.kind == "number":
            return pd.Series(self.data, copy=False)
        if self.kind == "bool":
            if (self.data >= 0).all():
                return pd.Series(self.data.astype(bool), copy=False)
            return pd.Series(pd.arrays.BooleanArray(self.data > 0, self.data < 0), copy=False)
        codes = self.data if self.data is not None else np.full(self.n_rows, -1, np.int32)
        categories = pd.Index(list(self.labels), dtype=object)
        return pd.Series(pd.Categorical.from_codes(codes, categories=categories))


def _compact(s: pd.Series) -> tuple[Any, str | None]:
    """One part's column and its kind: "number", "bool", "label", "skip" (values that are
    arrays), or None (all null, and no dtype to tell: the other parts decide)."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.array, "bool"
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.array, "number"
    if s.dtype != object:
        return s, "label"  # strings
    present = s.dropna()
    if present.empty:
        return None, None
    if all(isinstance(v, bool | np.bool_) for v in present):  # verdicts joined with gaps
        return s.where(s.notna(), None), "bool"
    if any(pd.api.types.is_list_like(v) for v in present):
        return None, "skip"  # arrays per item (e.g. speaker embeddings): not a label
    return s, "label"


class _Builder:
    """Collects the bounded columns and the first flagged rows of a run, part by part."""

    def __init__(self, sizes: Sequence[int], keep_labels: Collection[str]) -> None:
        self.bounds = np.cumsum([0, *sizes])
        self.keep_labels = set(keep_labels)
        self.columns: dict[str, _Column] = {}
        self.dropped: set[str] = set()
        self.offset = 0
        self.flagged: list[pd.DataFrame] = []
        self.flagged_total = 0
        self.located: np.ndarray | None = np.zeros(int(self.bounds[-1]), dtype=bool)
        self.attribute_columns: dict[str, None] = {}

    def add(self, df: pd.DataFrame, attribute_columns: Sequence[str]) -> None:
        rows = slice(self.offset, self.offset + len(df))
        self.offset += len(df)
        self.attribute_columns |= dict.fromkeys(attribute_columns)
        mask = flagged_mask(df)
        self.flagged_total += int(mask.sum())
        room = MAX_FLAGGED_JSON - sum(len(f) for f in self.flagged)
        if room > 0 and mask.any():
            cols = [c for c in FLAGGED_COLUMNS if c in df.columns]
            self.flagged.append(df[cols][mask.to_numpy()].head(room))  # columns first: cheaper
        found = located(df)
        if found is None or self.located is None:
            self.located = None
        else:
            self.located[rows] = found
        if "error" in df.columns:
            self._keep(ERROR_KIND, df["error"].map(error_kind, na_action="ignore"), rows)
        for name in df.columns:
            if name not in PER_ITEM:
                self._keep(name, df[name], rows)

    def _keep(self, name: str, s: pd.Series, rows: slice) -> None:
        if name in self.dropped:
            return
        values, kind = _compact(s)
        if kind == "skip":
            self.dropped.add(name)
            self.columns.pop(name, None)
            return
        column = self.columns.setdefault(name, _Column(int(self.bounds[-1])))
        column.add(rows, values, kind)
        if name not in self.keep_labels and len(column.labels) > MAX_LABELS:
            self.dropped.add(name)  # free text: not worth a category per value
            del self.columns[name]

    def frame(self) -> pd.DataFrame:
        n = int(self.bounds[-1])
        data = {name: self.columns.pop(name).series() for name in list(self.columns)}
        # One block per column, no consolidated copy: the columns are the table's memory.
        return pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)


def read_run(
    store: Store,
    run_id: str,
    docs_dir: str | None,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    *,
    keep_labels: Collection[str] = (),
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[RunTable, ContractResult]:
    """The bounded table of a stored run and its data contract, in one pass over its parts.

    ``keep_labels`` are the columns kept as labels however many values they have (the fairness
    attributes). The contract sees each part as ``runs.read_items`` would give its rows, with
    the attributes flattened, as ``assess`` validates a whole frame."""
    parts = runs.run_parts(store, run_id)
    builder = _Builder(parts.sizes, keep_labels)

    def frames():
        for _, df in runs.iter_items(store, parts, chunk_rows):
            flat = flatten_attributes(df) if "attributes" in df.columns else df
            builder.add(flat, [c for c in flat.columns if c not in df.columns])
            yield flat

    def ids_again():
        folder = layout.items_dir(run_id)
        for _, table in stats.column_parts(store, folder, ["id"], parts.names):
            yield table.column("id").to_pandas()

    contract = check_contract_parts(
        frames(),
        parts.columns,
        docs_dir,
        max_duration_s,
        ids_again=ids_again,
        chunk_rows=chunk_rows,
    )
    sizes = builder.bounds

    def rows(positions: Sequence[int]) -> pd.DataFrame:
        """Whole rows (items + metrics) at ``positions``, read again from their parts only."""
        where = [(int(np.searchsorted(sizes, p, side="right")) - 1, p) for p in positions]
        read = {
            i: runs.read_parts(store, parts, [parts.names[i]])
            for i in sorted({i for i, _ in where})
        }
        out = [read[i].iloc[[p - sizes[i]]] for i, p in where]
        return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=parts.columns)

    frame = builder.frame()
    table = RunTable(
        frame=frame,
        flagged=pd.concat(builder.flagged, ignore_index=True)
        if builder.flagged
        else pd.DataFrame(columns=[c for c in FLAGGED_COLUMNS if c in parts.columns]),
        flagged_total=builder.flagged_total,
        located=builder.located,
        attribute_columns=[c for c in builder.attribute_columns if c in frame.columns],
        rows=rows,
    )
    return table, contract
