"""Review 72g, perf: the call-count pins of the trace append path (tests/test_review66m_trace.py,
tests/test_review67a_perf.py, benchmarks/README.md "Pass 72g").

1. They summed `pstats.Stats(profile).stats`, whose rows are keyed by (file, line, name): every
   dataclass's generated `__init__` is ('<string>', 2, '__init__'), so one survived and the
   others' calls were dropped, which one depending on the run. On the two-writer path one
   `__init__` a record (the log's `_Head`, one per admitted record) was in the sum or not:
   146.10 or 147.10 calls a record, and `test_python_calls_per_record_after_another_writers_
   commit_stay_counted` (<= 147) failed on main in some runs and passed in others. They now
   count the profiler's own entries (`tests.support.profiled.calls`), one per code object."""

from __future__ import annotations

import cProfile
from dataclasses import dataclass

from tests.support import profiled


@dataclass
class _First:
    value: int


@dataclass
class _Second:
    value: int


def test_every_dataclass_init_is_counted_apart() -> None:
    """72g perf 1: two dataclasses made 3 and 5 times: 8 `__init__` calls, whatever pstats
    kept of their one shared key (3 or 5)."""
    profile = cProfile.Profile()
    profile.enable()
    first = [_First(i) for i in range(3)]
    second = [_Second(i) for i in range(5)]
    profile.disable()
    assert (len(first), len(second)) == (3, 5)
    inits = sum(
        entry.callcount
        for entry in profile.getstats()
        if getattr(entry.code, "co_name", "") == "__init__"
    )
    assert inits == 8
    # the listcomps, the eight inits, `len` is outside; `disable` is recorded
    assert profiled.calls(profile) == inits + 3, [(e.code, e.callcount) for e in profile.getstats()]
