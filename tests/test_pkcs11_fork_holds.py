"""Two threads forking at once (lead, session 72, pkcs11 fork 1): the locks `hold_sessions`
takes before a fork were listed in one list of the process, so the first forker's
`release_held` after its fork also popped, and released from its own thread, what the second
had just taken (RuntimeError: cannot release un-acquired lock, in the after-fork hook), and
the second, its entries gone, kept the session table's lock for good: the next fork of the
process waited for ever (test_review67r_refuted's two forkers hung so in a CI run under load).
Each thread now releases only what it took."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from troth.vault.pkcs11_fork import hold_sessions, release_held

GUARD = 10.0


class _Announcing:
    """A re-entrant lock that says when a thread other than `quiet` has taken it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.taken_by_other = threading.Event()
        self.quiet: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self.lock.acquire(blocking, timeout)
        if got and threading.get_ident() != self.quiet:
            self.taken_by_other.set()
        return got

    def release(self) -> None:
        self.lock.release()


@dataclass
class _Session:
    lock: Any = field(default_factory=_Announcing)
    pid: int = field(default_factory=os.getpid)


class _TableLock(_Announcing):
    """The table's lock: once the first forker let it go, it waits (bounded) until the second
    forker took the session's lock too — after listing the table's lock — before the first
    forker's `release_held` goes on."""

    def __init__(self, then: threading.Event) -> None:
        super().__init__()
        self.then = then

    def release(self) -> None:
        super().release()
        if threading.get_ident() == self.quiet:
            self.then.wait(GUARD)


def test_a_forker_releases_only_what_it_took_while_another_forks() -> None:
    session = _Session()
    table = _TableLock(session.lock.taken_by_other)
    sessions: dict[Any, Any] = {"token": session}
    errors: list[BaseException] = []
    first_holds, second_started, first_done = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )
    table.quiet = session.lock.quiet = None

    def forker(first: bool) -> None:
        try:
            if first:
                table.quiet = session.lock.quiet = threading.get_ident()
                hold_sessions(sessions, table)
                first_holds.set()
                second_started.wait(GUARD)
                try:
                    release_held()  # as after its fork
                finally:
                    first_done.set()
            else:
                first_holds.wait(GUARD)
                second_started.set()
                hold_sessions(sessions, table)
                first_done.wait(GUARD)  # its fork takes a while: the first's ends meanwhile
                release_held()
        except BaseException as error:  # reported: what a thread raised
            errors.append(error)

    threads = [threading.Thread(target=forker, args=(first,)) for first in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GUARD)
    assert not errors, errors
    assert session.lock.taken_by_other.is_set()  # the second forker did take both
    for lock in (table.lock, session.lock.lock):  # nothing left held by either thread
        assert lock.acquire(blocking=False)
        lock.release()
