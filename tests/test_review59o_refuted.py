"""Review 59o: attacks on the last fixes merged that did not work (each test fails if the
defence it names breaks)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import anyio

from tests.conftest import NOW
from tests.support.cli import run
from tests.test_review57i_restore import _refused, _restored_after_rotation
from tests.test_review59b_trace import _changes, _record, _rotate
from troth.clock import SystemClock
from troth.integrations.mcp.room import AnswerRoom, _Promise
from troth.node import open_node


def test_restored_at_stays_set_through_a_release_and_a_counted_rotation(troth_home: Path) -> None:
    """bdce671a looks holds up only while the identity scope's `restored_at` is set: a later
    count of the scope (the released identity's rotation: an UPDATE of the counter) and
    another opening (the guard checked again, the store current) leave it set, so the identity
    still held does not sign."""
    _restored_after_rotation(troth_home)
    with open_node("laptop") as node:
        _refused(lambda: node.identities.signer("courier", now=NOW + 20))
        assert node.identities.release_restored("clerk")
        node.identities.rotate("clerk", now=NOW + 30)  # counted in the identity scope
    with open_node("laptop") as node:
        row = node.db.fetch_one(
            "SELECT restored_at FROM rollback_counters WHERE scope = 'identity'"
        )
        assert row is not None
        assert row[0] is not None
        _refused(lambda: node.identities.signer("courier", now=NOW + 40))
        node.identities.signer("clerk", now=NOW + 40)


def test_a_compromised_rotation_right_after_one_dated_ahead_is_dated_at_it() -> None:
    """a4c7cd12 dates a compromised rotation by the clock and the current change only: right
    after a plain rotation dated ahead by a record (the clock not yet there), its two changes
    are dated at the current change, not refused as dated before it (TIME_REVERSED)."""
    run("identity", "create", "support")
    now = SystemClock().now()
    ahead = now + 200
    _record("support", ahead)
    _rotate(now)  # dated by the record ahead
    _rotate(now, compromised=True)
    assert _changes("support", now)[1:] == [ahead, ahead, ahead]


def test_a_promise_freed_after_its_event_loop_closed_raises_nothing(monkeypatch: Any) -> None:
    """Review 59n's `__del__` (review 59o's hand-off to the loop): a promise freed once the
    event loop of the calls waiting is closed (a session's tasks dropped at exit), in that
    thread or another, wakes nothing and prints nothing ("Exception ignored in __del__")."""
    ignored: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    room = AnswerRoom(100, 10, 100)

    async def waited() -> None:
        with anyio.move_on_after(0):  # a call that waited for room, its loop remembered
            async with room.promised(1):
                pass

    whole = _Promise(room, 0)
    room._promises.add(whole)  # the room promised whole
    anyio.run(waited)
    assert room._loop is not None
    room._waiting = 1  # a call left waiting when its loop closed
    held = [_Promise(room, 2), _Promise(room, 3)]
    held.pop()  # in the loop's thread
    freeing = threading.Thread(target=held.pop)  # in another
    freeing.start()
    freeing.join()
    assert ignored == []
