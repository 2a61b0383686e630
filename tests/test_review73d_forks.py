"""Review 73d (area: forks): the PKCS#11 fork holds (troth.vault.pkcs11_session) and the
frames a connection queues apart (troth.transport.tcp_connection).

- 73d forks 1: a signal handler that raised (Ctrl-C's KeyboardInterrupt) between a lock's
  acquire and its listing in `hold_sessions`, or between its unlisting and its release in
  `release_held`, left the lock held by the forking thread for good: CPython reports an
  exception of a fork hook as unraisable and forks on, so the process went on with a session's
  lock (or the session table's) that nothing released, and the next signature on it (every
  vault open and fork, for the table's) waited for ever. The likely way there: Ctrl-C while a
  fork waits for a long signature, the signal taken by the signing thread, so the handler runs
  in the forking thread at the first check after its acquire returns. Each lock is now listed
  by the one C call that takes it, and a hold is unlisted and released by one C call.
- 73d forks 2: a frame written behind bytes already in the event loop's write buffer went in
  as its header and its payload apart (review 69h), and CPython 3.12's selector transport
  keeps each object written (a deque of them, for sendmsg) where 3.11's copied it: a relayed
  payload, a view of the frame it came in (a 100-byte message of a 60 KiB batch), kept that
  frame alive in the write buffer, which counted 100 bytes (`write_buffer`'s 1 MiB held
  hundreds of MiB for a slow reader), and a bytearray changed after the write would have been
  sent as changed. A payload not `bytes` is joined to its header there, as 3.11's write copied
  it."""

from __future__ import annotations

import dis
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from tests.test_review72w_split import _held_here, _Session
from troth.vault.pkcs11_fork import hold_sessions, release_held

_SIGNAL_POINTS = ("CALL", "JUMP_BACKWARD", "POP_JUMP_BACKWARD")
"""The instructions after which CPython runs a pending signal's Python handler (its eval
breaker, 3.11: after a call, at a backward jump; and a function's first instruction)."""


class _Signal(Exception):
    """What a signal handler raised (as Python's SIGINT handler raises KeyboardInterrupt)."""


def _signalled_at(point: int, name: str, run: Callable[[], object]) -> bool:
    """Run `run` as CPython runs a fork hook (an exception it raises swallowed), a handler
    raising at the `point`-th place a pending signal's handler runs inside the function `name`
    (after its first instruction: a signal pending there is one taken before it, as between
    two hooks). Whether it was raised."""
    seen = [0]
    last = [""]

    def local(frame: FrameType, event: str, arg: object) -> object:
        if event == "opcode":
            if last[0].startswith(_SIGNAL_POINTS):
                seen[0] += 1
                if seen[0] - 1 == point:
                    raise _Signal
            last[0] = dis.opname[frame.f_code.co_code[frame.f_lasti]]
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> object:
        if event == "call" and frame.f_code.co_qualname.split(".")[0] == name:
            frame.f_trace_opcodes = True
            last[0] = ""
            return local
        return None

    before = sys.gettrace()
    sys.settrace(tracer)  # type: ignore[arg-type]
    try:
        run()
    except _Signal:
        return True
    finally:
        sys.settrace(before)
    return False


def test_a_signal_handler_raising_in_a_fork_hook_leaves_no_lock_held() -> None:
    """73d forks 1: a handler raising at each place one runs inside `hold_sessions`, then inside
    `release_held` (each run as CPython runs a hook; since review 73j there is no such place in
    `release_held`, a chain of C calls); after both, neither the table's lock nor
    the session's is held (the process's next signature waited for ever)."""
    for traced in ("hold_sessions", "_take_held", "release_held"):
        point = 0
        while True:
            table, session = threading.RLock(), _Session()
            sessions: dict[Any, Any] = {"token": session}
            raised = False

            def hold() -> None:
                hold_sessions(sessions, table)  # noqa: B023 - called in this iteration

            hooks: list[tuple[str, Callable[[], None]]] = [
                ("hold_sessions", hold),
                ("release_held", release_held),
            ]
            for name, run in hooks:
                if name == traced or (name, traced) == ("hold_sessions", "_take_held"):
                    raised = _signalled_at(point, traced, run)
                else:
                    run()
            assert not _held_here(table), (traced, point)
            assert not _held_here(session.lock), (traced, point)
            if not raised:
                break
            point += 1
        # a handler did raise inside `hold_sessions` (and `_take_held`, the locks it takes, since
        # review 74e); `release_held` runs no bytecode, so none
        # runs inside it (review 73j, forks2 1: one ran at its first instruction)
        assert (point > 0) is (traced != "release_held")


# 73d forks 2's attack (the write buffer patched to keep objects as on 3.12) is
# tests/test_review73j_forks2.py's (with its `_KeepingSocket`): since
# review 73j the connection asks its transport (`write_copies`), so the fake that keeps what is
# written is enough, with no version flag to patch.
