"""Side-by-side measurement: every figure is timed against its floor (or a peer) in the same
run, rounds interleaved, so machine noise hits both alike. The per-operation time of each side
is the minimum over rounds (the least-disturbed run, as timeit recommends)."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Case", "Measurement", "measure_pair", "select", "smoke", "smoking"]

SMOKE_DIVISOR = 20
"""In a smoke run (`smoke()`, `troth bench --smoke`) each batch is this many times shorter."""

_smoke = False


@dataclass(frozen=True)
class Measurement:
    """One benchmark figure beside its floor (`baseline`, measured in the same run) and the
    ratio of the two; `target` is the figure it should stay within, if any."""

    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    ratio: float
    target: str | None = None
    meets_target: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Case:
    """A named benchmark; `run(quick)` returns its measurements."""

    name: str
    run: Callable[[bool], list[Measurement]]


Batch = Callable[[int], float | None]
"""Runs an operation `n` times; returns its own seconds per operation when only part of its
work is the operation (a peer that needs setup, such as a server thread), else None."""


def _time(batch: Batch, n: int) -> float:
    start = time.perf_counter()
    own = batch(n)
    return (time.perf_counter() - start) / n if own is None else own


@contextmanager
def smoke() -> Iterator[None]:
    """Inside it, `measure_pair` runs one round of batches `SMOKE_DIVISOR` times shorter with
    no warm-up: every case runs and reports each of its figures, but the figures mean nothing
    (what a check of the report's shape needs: `troth bench --smoke`)."""
    global _smoke
    before, _smoke = _smoke, True
    try:
        yield
    finally:
        _smoke = before


def smoking() -> bool:
    """Whether a smoke run (`smoke()`) is on: a case may then build a smaller world, since its
    figures mean nothing."""
    return _smoke


def measure_pair(subject: Batch, floor: Batch, *, n: int, rounds: int) -> tuple[float, float]:
    """Seconds per operation of `subject` and `floor`, interleaved over `rounds` rounds (in
    a smoke run, `smoke()`, one round of shorter batches)."""
    if _smoke:
        n, rounds = max(1, n // SMOKE_DIVISOR), 1
    else:
        subject(max(1, n // 10))  # warm caches and code paths
        floor(max(1, n // 10))
    best_subject = best_floor = float("inf")
    for _ in range(rounds):
        best_subject = min(best_subject, _time(subject, n))
        best_floor = min(best_floor, _time(floor, n))
    return best_subject, best_floor


def ratio_target(ratio: float, limit: float) -> tuple[str, bool]:
    return f"<= {limit}x", ratio <= limit


def select(cases: list[Case], pattern: str | None) -> list[Case]:
    """The cases whose name matches `pattern` (a glob, or a substring when it has no glob
    characters); all of them without one."""
    if not pattern:
        return cases
    glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return [c for c in cases if fnmatch.fnmatch(c.name, glob)]
