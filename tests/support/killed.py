"""A write killed at any SQLite statement or crash point, in a forked child (review 60n): no
interpreter start per kill (~1 ms a fork here where a `python -c` child took ~300 ms), so a
test can kill an operation at a dozen points within a second."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any

from troth import faults
from troth.faults import CRASH_EXIT_CODE

__all__ = ["KILLS", "killed_after"]


def killed_after(statements: int, work: Callable[[], None], crash_at: str | None = None) -> int:
    """Run `work` in a forked child killed (`os._exit`, as SIGKILL: no cleanup) as its
    statement number `statements` of any SQLite connection it opens starts (0: never), or at
    the crash point `crash_at` (troth.faults); the child's exit code (`CRASH_EXIT_CODE` when
    killed, 0 when `work` finished, else 1). How many statements it ran: `KILLS[-1]`."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest cleanup, no return
        code = 1
        try:
            os.close(read_end)
            seen = [0]

            def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
                conn: sqlite3.Connection = _connect(*args, **kwargs)

                def statement(_sql: str) -> None:
                    seen[0] += 1
                    if seen[0] == statements:
                        os._exit(CRASH_EXIT_CODE)

                conn.set_trace_callback(statement)
                return conn

            setattr(faults, "_ARMED", crash_at)  # noqa: B010  # the child's own module
            sqlite3.connect = traced  # type: ignore[assignment]  # the child's own module
            work()
            os.write(write_end, str(seen[0]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reported:
        ran = reported.read()
    _, status = os.waitpid(pid, 0)
    KILLS.append(int(ran) if ran else -1)
    return os.waitstatus_to_exitcode(status)


_connect = sqlite3.connect
KILLS: list[int] = []
"""How many statements each `killed_after` child ran (-1: it reported none, killed)."""
