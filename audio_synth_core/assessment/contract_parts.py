"""The data contract of a whole run, validated chunk by chunk: no step holds all of a run's rows.

Great Expectations validates each chunk (consecutive parts, about ``CHUNK_ROWS`` rows) with the
suite of ``contract.check_contract``, in one context, so the Data Docs site holds one validation
result per chunk (named by its rows). The chunks' outcomes are merged into one result per
expectation, as if the whole run had been one frame: it succeeds when every chunk did, unexpected
counts add up, percentages are over all the rows judged, and the first examples are kept.

Uniqueness of ``id`` is the one expectation that spans chunks: GX sees one chunk at a time, so the
run-wide verdict replaces the merged one. It is exact and stays small: a 64-bit hash of every id
(8 bytes an item), and only when a hash repeats, the ids are read again (``ids_again``) and those
with a repeated hash counted by value.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from audio_synth_core.assessment.contract import (
    DEFAULT_MAX_DURATION_S,
    ContractResult,
    ContractRunner,
    ExpectationOutcome,
)

# Rows per GX run: large enough that GX's fixed cost per run (~0.4 s) is small next to the rows'
# own, small enough that a chunk of full metadata rows stays tens of MB.
CHUNK_ROWS = 50_000
UNIQUE_ID = ("expect_column_values_to_be_unique", "id")


class _Merged:
    """One expectation's outcomes over the chunks validated so far."""

    def __init__(self, first: ExpectationOutcome, judged: int | None) -> None:
        self.first = first
        self.judged = judged
        self.chunks = 1
        self.unexpected = first.unexpected_count
        self.examples = list(first.partial_unexpected)
        self.failing = None if first.success else first

    def add(self, outcome: ExpectationOutcome, judged: int | None) -> None:
        self.chunks += 1
        if outcome.unexpected_count is not None:
            self.unexpected = (self.unexpected or 0) + outcome.unexpected_count
        if judged is not None:
            self.judged = (self.judged or 0) + judged
        self.examples += outcome.partial_unexpected
        if not outcome.success and self.failing is None:
            self.failing = outcome

    def outcome(self, n_examples: int) -> ExpectationOutcome:
        if self.chunks == 1:
            return self.first
        base = self.failing or self.first  # its observed value, details and exception
        percent = base.unexpected_percent
        if self.unexpected is not None and self.judged:
            percent = 100.0 * self.unexpected / self.judged
        return replace(
            base,
            success=self.failing is None,
            unexpected_count=self.unexpected,
            unexpected_percent=percent,
            partial_unexpected=self.examples[:n_examples],
        )


def _hashes(ids: pd.Series) -> np.ndarray:
    return pd.util.hash_array(ids.dropna().to_numpy(dtype=object))


@dataclass
class _IdHashes:
    """64-bit hashes of every non-null id seen, and how many ids were null."""

    parts: list[np.ndarray] = field(default_factory=list)
    rows: int = 0
    nulls: int = 0

    def add(self, ids: pd.Series) -> None:
        self.rows += len(ids)
        self.nulls += int(ids.isna().sum())
        self.parts.append(_hashes(ids))

    def repeated(self) -> np.ndarray:
        """The hashes seen more than once (sorted)."""
        h = np.sort(np.concatenate(self.parts)) if self.parts else np.empty(0, np.uint64)
        return np.unique(h[1:][h[1:] == h[:-1]])


def _run_wide_unique(
    merged: ExpectationOutcome,
    ids: _IdHashes,
    ids_again: Callable[[], Iterable[pd.Series]],
    n_examples: int,
) -> ExpectationOutcome:
    """The unique-id outcome over the whole run, as GX reports it on one frame: every row whose
    id occurs more than once is unexpected (nulls are not judged), examples in row order."""
    repeated = ids.repeated()
    unexpected, examples = 0, []
    if repeated.size:  # a duplicate, or (rarely) a hash collision: count the ids themselves
        candidates = [s.dropna()[np.isin(_hashes(s), repeated)] for s in ids_again()]
        seen = pd.concat(candidates, ignore_index=True) if candidates else pd.Series([])
        counts = Counter(seen.tolist())
        dup = [v for v in seen.tolist() if counts[v] > 1]
        unexpected, examples = len(dup), dup[:n_examples]
    judged = ids.rows - ids.nulls
    return replace(
        merged,
        success=unexpected == 0 and merged.exception is None,
        unexpected_count=unexpected,
        unexpected_percent=100.0 * unexpected / judged if judged else merged.unexpected_percent,
        partial_unexpected=examples,
    )


def _chunks(frames: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Consecutive frames concatenated into chunks of about ``rows`` rows (the last smaller)."""
    buffer: list[pd.DataFrame] = []
    size = 0
    for df in frames:
        buffer.append(df)
        size += len(df)
        if size >= rows:
            yield pd.concat(buffer, ignore_index=True) if len(buffer) > 1 else buffer[0]
            buffer, size = [], 0
    if buffer:
        yield pd.concat(buffer, ignore_index=True) if len(buffer) > 1 else buffer[0]


def check_contract_parts(
    frames: Iterable[pd.DataFrame],
    columns: Sequence[str],
    docs_dir: str | None,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    *,
    ids_again: Callable[[], Iterable[pd.Series]],
    chunk_rows: int = CHUNK_ROWS,
    partial_unexpected_count: int = 10,
) -> ContractResult:
    """``check_contract`` of the concatenation of ``frames`` (a run's parts, in row order, each
    with the run's ``columns``), holding one chunk of them at a time.

    ``ids_again`` yields the run's ``id`` column again, part by part in the same order; it is
    only called when two ids may be equal. Without frames, an empty frame of ``columns`` is
    validated (a run without items still gets its verdict)."""
    t0 = time.perf_counter()
    runner = ContractRunner.create(
        columns, docs_dir, max_duration_s, partial_unexpected_count=partial_unexpected_count
    )
    merged: list[_Merged] = []
    ids = _IdHashes()
    n_rows = 0
    for chunk in _chunks(frames, chunk_rows):
        if "id" in chunk.columns:
            ids.add(chunk["id"])
        name = f"rows {n_rows}-{n_rows + len(chunk) - 1}"
        n_rows += len(chunk)
        _, outcomes = runner.validate(chunk, run_name=name)
        del chunk
        # Arrow's allocator keeps the freed pages of the parts read so far for reuse; a run's
        # parts pass through once, so hand them back (RSS then follows what is held).
        pa.default_memory_pool().release_unused()
        if not merged:
            merged = [_Merged(o, judged) for o, judged in outcomes]
        else:
            for m, (o, judged) in zip(merged, outcomes, strict=True):
                m.add(o, judged)
    if not merged:
        _, outcomes = runner.validate(pd.DataFrame(columns=list(columns)))
        merged = [_Merged(o, judged) for o, judged in outcomes]
    results = [m.outcome(partial_unexpected_count) for m in merged]
    if "id" in columns:
        results = [
            _run_wide_unique(r, ids, ids_again, partial_unexpected_count)
            if (r.expectation, r.column) == UNIQUE_ID
            else r
            for r in results
        ]
    return ContractResult(
        success=all(r.success for r in results),
        results=results,
        data_docs_index=runner.data_docs_index,
        n_rows=n_rows,
        elapsed_s=time.perf_counter() - t0,
    )
