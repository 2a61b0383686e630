"""A process that keeps a lock, forks a worker that lives on, and is killed (SIGKILL), in a
turn or not: what a lock file kept open leaves to the children of a killed process (review 58k,
guard 1; review 58, lead, turns 1)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

K = TypeVar("K")


@contextmanager
def killed_with_a_child_living(
    keep: Callable[[], K], turn: Callable[[K], AbstractContextManager[object]] | None = None
) -> Iterator[None]:
    """In a forked process: `keep()`, then fork a worker that lives on (until the block ends),
    then be killed, inside `turn(kept)` if given. The block runs once the process is dead and
    its worker still alive."""
    worker_may_end, worker_end = os.pipe()
    started, start = os.pipe()
    holder = os.fork()
    if holder == 0:
        try:
            kept = keep()  # referenced until the kill
            if os.fork() == 0:  # the worker: lives on, holding what it inherited
                os.close(worker_end)
                os.write(start, b"s")  # running (its fork handlers ran)
                os.read(worker_may_end, 1)
                os._exit(0)
            os.read(started, 1)
            if turn is None:
                os.kill(os.getpid(), signal.SIGKILL)
            else:
                with turn(kept):
                    os.kill(os.getpid(), signal.SIGKILL)  # killed in a turn
        finally:
            os._exit(1)
    for end in (worker_may_end, started, start):
        os.close(end)
    try:
        _, status = os.waitpid(holder, 0)
        if os.waitstatus_to_exitcode(status) != -signal.SIGKILL:
            raise RuntimeError(f"the holder ended otherwise: {status}")
        yield
    finally:
        os.close(worker_end)  # the worker ends (an orphan: init reaps it)
