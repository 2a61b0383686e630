"""Review 73j (area: forks2): 73d's fork holds against signal handlers
(troth.vault.pkcs11_session) and its write-buffer join (troth.transport.tcp_connection).

- 73j forks2 1: a signal pending when the after-fork hook `release_held` was called (one that
  arrived during the fork itself, or in a hook written in C run before it) had its handler run
  at the hook's first instruction (CPython 3.11 checks its eval breaker at a function's RESUME),
  before anything was released: a raising handler (Ctrl-C) left the fork's hold listed and its
  locks, the session table's and every session's, held by the forking thread for good (the next
  signature or open from another thread waited for ever). 73d's test raised only after the
  first instruction. The parent's after-fork hook is now a chain of C calls, with no bytecode
  before the hold is unlisted and its locks released.
- 73j forks2 2: 73d decided by the Python version alone whether the event loop's write buffer
  keeps the objects written (`WRITE_KEEPS_OBJECTS`, 3.12 and later); uvloop's transport keeps
  them on every version (its buffer holds each object written until libuv has sent it), so on
  3.11 under uvloop a relayed payload, a view of the whole frame it came in, still kept that
  frame alive, counted as its length. A connection now asks its transport: only one whose
  write buffer is a bytearray (CPython 3.11's selector transport, which copies what is written
  into it) is given a payload apart from its header."""

from __future__ import annotations

import asyncio
import collections
import ctypes
import functools
import itertools
import operator
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

import pytest

from tests.test_review53n_queues import FakeSocket
from tests.test_review72w_split import _held_here, _Session
from troth.routing import RoutedMessage, Router
from troth.transport import TcpSettings, TcpTransport
from troth.transport.tcp import TcpConnection
from troth.vault.pkcs11_fork import _HELD, before_fork, hold_sessions, release_held


class _Signal(Exception):
    """What the test's signal handler raised (as Python's SIGINT handler raises
    KeyboardInterrupt)."""


def _raising(signum: int, frame: FrameType | None) -> None:
    raise _Signal


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 here")
def test_a_signal_pending_when_the_after_fork_hook_starts_leaves_no_lock_held() -> None:
    """73j forks2 1: a hold taken, then (as CPython's after-fork hooks run: one C call after
    another) a signal raised by a C call, with no bytecode run after it, and `release_held`
    called: the handler raised, and neither the table's lock nor the session's is held."""
    table, session = threading.RLock(), _Session()
    libc = ctypes.CDLL(None, use_errno=True)  # (its kill runs no bytecode and checks no signal)
    kill = functools.partial(libc.kill, os.getpid(), signal.SIGUSR1)
    before = signal.signal(signal.SIGUSR1, _raising)
    try:
        sessions: dict[Any, Any] = {"token": session}
        hold_sessions(sessions, table)
        with pytest.raises(_Signal):
            list(map(operator.call, (kill, release_held)))  # as run_at_forkers calls hooks
        held = _held_here(table), _held_here(session.lock)
    finally:
        signal.signal(signal.SIGUSR1, before)
        while _HELD.holds:  # what the hook left (the locks are this test's; the list is not)
            release_held()
    assert held == (False, False)


class _KeepingSocket(FakeSocket):
    """A socket whose write buffer keeps the objects written, as CPython 3.12's selector
    transport and uvloop's do (it sends nothing: the peer reads nothing)."""

    def __init__(self) -> None:
        super().__init__("10.0.0.9", 4000)
        self.buffer: collections.deque[Any] = collections.deque()

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.buffer))

    def write(self, data: Any) -> None:
        self.buffer.append(data)

    def held(self) -> int:
        """What the buffer keeps alive: each object written, or the whole one it views."""
        bases = {id(base): base for base in (getattr(d, "obj", d) for d in self.buffer)}
        return sum(map(sys.getsizeof, bases.values()))


def test_a_transport_that_keeps_what_is_written_gets_no_view_of_a_whole_frame() -> None:
    """73j forks2 2 (and 73d forks 2): on this Python (3.11 here: 73d's `WRITE_KEEPS_OBJECTS`
    was false), relayed messages, each a 100-byte view of a 60 KiB frame of its own, sent to a
    peer whose write buffer holds bytes already, through a transport that keeps the objects
    written (as uvloop's does on every version, CPython's from 3.12): it keeps no more alive
    than it counts (a header's and an object's overhead aside)."""

    async def main() -> None:
        transport = TcpTransport(Router(), TcpSettings())
        connection = TcpConnection(transport, outgoing=True, listener=None, peer="10.0.0.9:4000")
        socket = _KeepingSocket()
        connection.connection_made(socket)
        try:
            for _ in range(8):
                frame = bytes(60 * 1024)  # the frame a relayed message came in
                await connection.send(RoutedMessage((), (), memoryview(frame)[:100]))
                await asyncio.sleep(0)  # (each frame its own loop iteration: not corked)
            assert socket.held() <= socket.get_write_buffer_size() + 64 * len(socket.buffer)
        finally:
            await transport.close()

    asyncio.run(main())


def test_the_selector_transport_here_copies_what_is_written() -> None:
    """73j forks2 2: the event loop's own transport on this Python is told apart as 3.11's
    copies (a bytearray write buffer) and 3.12's keeps (a deque): what the connection asks."""
    from troth.transport.tcp_connection import write_copies

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        left, right = __import__("socket").socketpair()
        with left, right:
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=left)
            try:
                return write_copies(transport)
            finally:
                transport.abort()

    assert asyncio.run(main()) is (sys.version_info < (3, 12))


def test_a_fork_whose_hold_was_interrupted_at_its_start_leaves_the_outer_hold_taken() -> None:
    """73j forks2 3: a fork made by a signal handler while an outer fork's `hold_sessions` runs
    (review 72w's nested fork), its own before-hook interrupted by a raising handler at its
    first instruction (nothing taken): after the inner fork's `release_held`, the outer fork
    still holds its locks (they were released, and the outer fork went on with no lock held).
    Review 74e (forks4 1) made the before-hook (`before_fork`) mark its hold by a C call before
    its first instruction; until then this test released with nothing listed, as the hook did."""
    table, session = threading.RLock(), _Session()
    sessions: dict[Any, Any] = {"token": session}
    inner = before_fork(sessions, functools.partial(next, itertools.repeat(table)))
    libc = ctypes.CDLL(None, use_errno=True)
    kill = functools.partial(libc.kill, os.getpid(), signal.SIGUSR1)
    before = signal.signal(signal.SIGUSR1, _raising)
    hold_sessions(sessions, table)  # the outer fork's
    try:
        with pytest.raises(_Signal):  # the inner fork's before-hook, as run_at_forkers calls it
            list(map(operator.call, (kill, inner)))  # type: ignore[arg-type]
        release_held()  # after the inner fork
        held = _held_here(table), _held_here(session.lock)
    finally:
        signal.signal(signal.SIGUSR1, before)
        while _HELD.holds:
            release_held()
    assert held == (True, True)
