"""Review 70m, telling2: a second look at review 70d's fixes to how a rotation or revocation
is told to the nodes here (`Announcer._tell_here`, `local_nodes_due`, `PeerLock(gated=False)`,
`announce_here`, `revoke_as_authority` / `revoke_link_recorded` with `told=`).

telling2 1 (low: a store made, or a mark cleared in another node's store) 70d closed each
marked node's store once its mark was committed, and `LocalDue.clear` (the authority refused
the revocation) opened it again by its path: checked with `is_file()`, then opened by
`SqliteDatabase`, which makes a missing file. A store removed between the check and the open
was made again, empty ("a node whose node.db does not exist is never created"); a node
directory removed and made again meanwhile (a new node of the same name: its store's marks
numbered from 1 as the old one's were) had its own mark of the authority, made by a revocation
under way there, deleted by the number the old store's mark had. Now the clear opens the
store without ever making it, only while `node.db.revoking` at its path is still the file the
mark's lock holds (the directory was not replaced), and deletes only the mark it made (its
number, authority, address and time).

telling2 2 (low: a node's authority service told the nodes here nothing more, for good) The
authority service's telling (`AuthorityService.tell_local_nodes`, after each revocation or
supersession taken over the network) set `_telling` before starting its thread, and a start
that failed (RuntimeError: the process out of threads, its `MAX_NODES_TOLD_AT_ONCE` helpers
waiting on silent daemons too; or the interpreter exiting) left it set: every later
revocation found a telling "running" and told no node here again for the node's life, and
the revocation, taken, was answered with the RuntimeError. 70d's `Announcer._tell_here` let
the flag go but raised: the round whose announcement the authority took failed, the node's
own announcements after it not made. Both now log the failed start, and the next revocation
or announcement tells (the announcer: this one's authority with it).
"""

from __future__ import annotations

import threading
from pathlib import Path, PosixPath
from typing import Any

import pytest

import troth.node.traces
from tests.conftest import NOW
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.node.announcements import Announcer
from troth.node.localdue import local_nodes_due
from troth.node.services.authority import AuthorityService


def marked_node(home: Path) -> tuple[Identifier, Path]:
    """Nodes `revoker` (identity `x`, the authority) and `n`, which trusts `x`."""
    for name in ("revoker", "n"):
        init_node(name)
    with open_node("revoker") as revoker:
        authority = revoker.identities.create(now=NOW, name="x").identifier
    with open_node("n") as node:
        node.wallet.store.trust_authority(authority.digest, "node:revoker", NOW)
    return authority, home / "nodes" / "n" / "node.db"


def _remove_store(store: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        store.with_name(store.name + suffix).unlink(missing_ok=True)


class _RemovedOnceChecked(PosixPath):
    """A store path that is a file when checked, and removed right after (another process's
    removal landing between the clear's check and its open)."""

    def is_file(self) -> bool:
        found = super().is_file()
        _remove_store(Path(self))
        return found


def test_telling2_1_a_store_removed_after_the_clears_check_is_not_made_again(
    troth_home: Path,
) -> None:
    """70m telling2 1: node `n`'s store, marked, is removed right after the refused
    revocation's clear found it (`LocalDue.clear`): the clear's open does not make it again,
    empty."""
    authority, store = marked_node(troth_home)
    with open_node("revoker") as revoker, local_nodes_due(revoker, authority, now=NOW) as due:
        assert due.names == ["n"]
        due.marked[0].path = _RemovedOnceChecked(store)
        due.clear()
    assert not store.exists()


def test_telling2_1_a_node_made_again_keeps_its_own_mark(troth_home: Path) -> None:
    """70m telling2 1: node `n`, marked (its store's first mark), is removed and made again
    under the same name before the authority refuses the revocation; the new `n` trusts the
    authority and a link revocation under way there marked it a second later (its first mark
    too). The refused revocation's clear leaves the new store's mark: it is not the one made."""
    authority, store = marked_node(troth_home)
    with open_node("revoker") as revoker, local_nodes_due(revoker, authority, now=NOW) as due:
        (mark,) = [m.mark for m in due.marked]
        for entry in store.parent.iterdir():
            entry.unlink()
        store.parent.rmdir()
        init_node("n")
        with open_node("n") as node:
            node.wallet.store.trust_authority(authority.digest, "node:revoker", NOW)
            assert node.wallet.store.mark_sync_due(authority.digest, "", NOW + 1) == mark
        due.clear()
    with open_node("n") as node:
        assert node.wallet.store.marks_due(authority.digest) == [mark]


def bare_announcer() -> Announcer:
    """An announcer whose node, trust and channels are never used (its telling only)."""
    none: Any = None
    return Announcer(
        none, none, own="me", worker=none, clock=none, router=none, channel_to=none, rotated=none
    )


def _out_of_threads(self: threading.Thread) -> None:
    raise RuntimeError("can't start new thread")


def test_telling2_2_a_telling_that_did_not_start_does_not_stop_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """70m telling2 2: the authority service's telling thread fails to start once (the
    process out of threads): the revocation that asked is not failed by it, and the next
    one's telling runs."""
    told = threading.Event()
    service: Any = object.__new__(AuthorityService)
    service._tell_lock, service._telling, service._tell_again = threading.Lock(), False, False
    service.trust = service.authority = None
    monkeypatch.setattr(service, "_tell", told.set)
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", _out_of_threads)
    service.tell_local_nodes()
    monkeypatch.setattr(threading.Thread, "start", start)
    service.tell_local_nodes()
    assert told.wait(10)


def test_telling2_2_an_announcers_telling_that_did_not_start_is_told_with_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """70m telling2 2: a running node's announcement to authority `a` here was taken, and its
    telling thread fails to start (the process out of threads): the announcement is not failed
    by it, and the next announcement's telling (authority `b`) tells `a` too."""
    told: list[list[Identifier]] = []
    ended = threading.Event()

    def tell(node: object, authorities: list[Identifier], **_: object) -> None:
        told.append(list(authorities))
        ended.set()

    monkeypatch.setattr(troth.node.traces, "tell_nodes_here", tell)
    announcer = bare_announcer()
    a, b = (Identifier(bytes([i]) * 32) for i in (1, 2))
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", _out_of_threads)
    announcer._tell_here(a)
    monkeypatch.setattr(threading.Thread, "start", start)
    announcer._tell_here(b)
    assert ended.wait(10)
    assert told == [sorted([a, b], key=lambda each: each.digest)]
