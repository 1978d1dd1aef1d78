"""Progress of mapped shard tasks on the terminal (a bar on a TTY, periodic lines otherwise)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prefect.futures import PrefectFuture, as_completed
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def completed(futures: list[PrefectFuture], label: str, items: int) -> Iterator[PrefectFuture]:
    """Yield futures as they finish while showing shards and items done."""
    total = len(futures)
    if total == 0:
        return
    if sys.stderr.isatty():
        columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(label, total=total)
            for fut in as_completed(futures):
                yield fut
                bar.advance(task)
        return
    start, step = time.monotonic(), max(1, total // 20)
    for done, fut in enumerate(as_completed(futures), start=1):
        yield fut
        if done % step == 0 or done == total:
            elapsed = time.monotonic() - start
            print(
                f"{label}: {done}/{total} shards of {items} items, {elapsed:.0f} s elapsed",
                flush=True,
            )


def gather(futures: Iterable[PrefectFuture], label: str, items: int) -> tuple[list[Any], list[str]]:
    """Results of all futures; a shard that failed after its retries is reported, not fatal here."""
    results, errors = [], []
    for fut in completed(list(futures), label, items):
        try:
            results.append(fut.result())
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return results, errors
