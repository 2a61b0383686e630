"""Python calls counted by cProfile, every function apart (the call-count pins of the trace
append path: tests/test_review66m_trace.py, tests/test_review67a_perf.py).

`pstats.Stats` keys its rows by (file, line, name): every dataclass's generated `__init__` is
('<string>', 2, '__init__'), so all but one of them were dropped from a sum over its rows (which
one is kept varies from run to run: review 72g, perf 1). The profiler's own entries are one per
code object."""

from __future__ import annotations

import cProfile


def calls(profile: cProfile.Profile) -> int:
    """Every call `profile` recorded (recursive ones included, as pstats' `nc`)."""
    return sum(entry.callcount for entry in profile.getstats())
