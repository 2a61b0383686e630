"""Review 53h, due 1 (the closing note of 2026-12-05, "Knowingly left": "a `DueTries` count can
get one extra try when two threads resume at once"): a node's poll of its marks and its
handouts spend one count of failed settling syncs (troth.node.duetries), but a try was counted
only once it failed. So two of them asking at once, once a newer mark allowed one more try
(or at the count's last), both tried: `DUE_TRIES` + 1 syncs of a lost authority, each opening
every node here. Now a try is counted while it runs: a second asking meanwhile is refused
(the marks stand: fail closed), and one that ended without a word (an exception, not a failed
sync) gives its place back."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import troth
import troth.node.syncdue
from troth.clock import SystemClock
from troth.errors import NotFound
from troth.identity import Identifier
from troth.limits import DUE_TRIES
from troth.node.duetries import DueTries

A = Identifier(bytes(32))


def _stopped_at(newest: int) -> DueTries:
    tries = DueTries()
    for _ in range(DUE_TRIES):
        assert tries.resume(A, newest)
        tries.failed(A)
    tries.stop(A, newest)
    return tries


def test_two_resuming_at_once_after_a_newer_mark_get_one_try() -> None:
    tries = _stopped_at(1)
    assert tries.resume(A, 2)  # the poll
    assert not tries.resume(A, 2)  # a handout meanwhile: the one try is the poll's
    assert tries.failed(A)
    tries.stop(A, 2)
    assert not tries.resume(A, 2)


def test_two_at_the_last_try_get_one() -> None:
    tries = DueTries()
    for _ in range(DUE_TRIES - 1):
        assert tries.resume(A, 1)
        assert not tries.failed(A)
    assert tries.resume(A, 1)
    assert not tries.resume(A, 1)


def test_a_try_that_ended_without_a_word_gives_its_place_back() -> None:
    tries = _stopped_at(1)
    assert tries.resume(A, 2)
    assert not tries.resume(A, 2)
    tries.ended(A)
    assert tries.resume(A, 2)


def test_two_threads_handing_out_at_once_sync_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost authority at its last try: one handout's sync is under way (held), another
    handout meanwhile does not sync too; both find the marks standing."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
    syncs: list[int] = []
    started, release = threading.Event(), threading.Event()

    def lost(*_: Any, **__: Any) -> Any:
        syncs.append(1)
        if len(syncs) == DUE_TRIES:  # the last try: held until the other handout asked
            started.set()
            release.wait()
        raise NotFound("no node here hosts that authority")

    monkeypatch.setattr(troth.node.syncdue, "sync_local_feed", lost)
    with troth.Node.open("agents") as agents:
        wallet = agents._stored.wallet
        wallet.store.mark_sync_due(acme.identifier.digest, "", 0)
        now = SystemClock().now()
        for _ in range(DUE_TRIES - 1):
            assert wallet.sync_due(acme.identifier, now=now)
        answers: list[bool] = []
        first = threading.Thread(
            target=lambda: answers.append(wallet.sync_due(acme.identifier, now=now))
        )
        first.start()
        try:
            started.wait()
            assert wallet.sync_due(acme.identifier, now=now)  # the marks stand: refused
        finally:
            release.set()
            first.join()
        assert answers == [True]
        assert len(syncs) == DUE_TRIES
        assert agents._stored.due_tries.stopped(acme.identifier)
