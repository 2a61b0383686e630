"""Review 72w (area: split): the lead's per-thread fork holds (troth.vault.pkcs11_session)
and 72m's frames queued apart (troth.transport.tcp_connection).

- 72w pkcs11 1: a fork inside a fork's before-hook (a signal handler run between two
  bytecodes of `hold_sessions`, forking) took its locks again on the same thread, and its
  after-fork `release_held` released every lock the thread had listed, the outer fork's too:
  the outer fork then went on without the session table's lock (and the sessions' taken
  before the signal), so a first open's login or a last close's C_CloseSession could run in
  another thread across it (review 67r, pkcs11 2). Each hold now releases only what it took.
- 72w transport 1: a payload queued apart was charged its base's length, not its allocation
  (`test_a_payload_queued_apart_is_charged_its_base_as_allocated`)."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from troth.channel.reassembly import IN_PLACE_ROOM
from troth.transport.settings import QUEUED_FRAME_COST
from troth.transport.tcp_connection import SPLIT_FROM, _queued_frame
from troth.vault.pkcs11_fork import hold_sessions, release_held

_HEAD = bytes(40)


@dataclass
class _Session:
    lock: threading.RLock = field(default_factory=threading.RLock)
    pid: int = field(default_factory=os.getpid)


def _held_here(lock: threading.RLock) -> bool:
    """Whether `lock` is held (by any thread but a fresh one, which tries it)."""
    free: list[bool] = []

    def probe() -> None:
        got = lock.acquire(blocking=False)
        if got:
            lock.release()
        free.append(got)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(10)
    return not free[0]


def test_a_fork_within_a_forks_hold_leaves_the_outer_holds() -> None:
    """72w pkcs11 1: the outer fork's hold (the table's lock, a session's) outlives the after-fork
    release of a fork made within it (a signal handler's), and is released by its own."""
    table = threading.RLock()
    session = _Session()
    sessions: dict[Any, Any] = {"token": session}
    hold_sessions(sessions, table)  # the outer fork's before-hook
    try:
        hold_sessions(sessions, table)  # a signal handler's fork
        release_held()  # after the inner fork
        assert _held_here(table)
        assert _held_here(session.lock)
    finally:
        release_held()  # after the outer fork
    assert not _held_here(table)
    assert not _held_here(session.lock)


def test_a_payload_queued_apart_is_charged_its_base_as_allocated() -> None:
    """72w transport 1: a payload queued apart (`_queued_frame`) was charged the length of the
    object it views, not what that object holds allocated: a channel's large decrypted frame
    keeps `IN_PLACE_ROOM` allocated after its plaintext (troth.channel.secure), and a relay
    that routes the message inside it on (node.channels `_deliver`) to a slow reader queued
    its payload as a view of it: ~1 KiB a frame more held than charged (issue #8: memory
    under a documented bound). It is charged `sys.getsizeof` of the object when that is
    more."""
    size = SPLIT_FROM + 100
    plain = bytearray(size + IN_PLACE_ROOM)  # as SecureChannel decrypts a large frame
    del plain[size:]  # (the room stays allocated)
    payload = memoryview(memoryview(plain)[100:])  # the inner message's payload, a view of it
    queued, charge = _queued_frame(_HEAD, payload)
    assert isinstance(queued, tuple)
    assert charge >= len(_HEAD) + sys.getsizeof(plain) + QUEUED_FRAME_COST
