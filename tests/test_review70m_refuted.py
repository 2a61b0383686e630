"""Review 70m (telling2): attacks on review 70d's fixes to how a rotation or revocation is told
here that did not work, each a test that fails if the defence it names breaks."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import pytest

import troth
import troth._api.network
import troth.node.authorities as authorities
import troth.node.traces
from tests.conftest import NOW
from tests.support.public_api import acme_and_agents
from tests.test_review70m_telling2 import bare_announcer, marked_node
from troth.clock import SystemClock
from troth.errors import AuthorityError, AuthorityFailure, StorageError, TrothError
from troth.identity import Identifier
from troth.node import open_node
from troth.node.announcements import Announcer
from troth.node.localdue import local_nodes_due
from troth.node.rotation import rotate_local
from troth.node.syncdue import orphaned_marks
from troth.storage import PeerLock


class _ArrivingLock:
    """The announcer's telling lock: each time the telling thread takes it, the next arrival
    (an announcement made on another thread) runs first, to its end: an announcement landing
    right before the telling reads what is left to tell, its last read too."""

    def __init__(self, announcer: Announcer, arrivals: list[Identifier]) -> None:
        self.lock, self.announcer, self.arrivals = threading.Lock(), announcer, arrivals

    def __enter__(self) -> None:
        if threading.current_thread().name == "troth-tell-local-nodes" and self.arrivals:
            arrival = threading.Thread(
                target=self.announcer._tell_here, args=(self.arrivals.pop(0),)
            )
            arrival.start()
            arrival.join(10)
        self.lock.acquire()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.lock.release()


def test_no_announcement_lost_while_the_telling_ends_or_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """70d telling 1, the check-then-set race: announcements of authorities b, c, d arrive
    each right before the telling thread reads what is left to tell (its last read, where it
    finds nothing and ends, too), and the telling of a raises. Each authority is told, once,
    and an announcement made after the telling ended starts another."""
    told: list[list[Identifier]] = []
    ended = threading.Event()
    a, b, c, d, e = (Identifier(bytes([i]) * 32) for i in range(1, 6))

    def tell(node: object, authorities: list[Identifier], **_: object) -> None:
        told.append(list(authorities))
        if authorities == [a]:
            raise RuntimeError("a daemon's telling failed")
        if e in authorities:
            ended.set()

    monkeypatch.setattr(troth.node.traces, "tell_nodes_here", tell)
    announcer = bare_announcer()
    arrivals = [b, c, d]
    announcer._telling_lock = cast(Any, _ArrivingLock(announcer, arrivals))
    announcer._tell_here(a)
    for _ in range(100):  # (the telling thread ends once it finds nothing left)
        if not announcer._telling and not arrivals:
            break
        threading.Event().wait(0.05)
    assert not announcer._telling
    announcer._tell_here(e)
    assert ended.wait(10)
    flat = [each for batch in told for each in batch]
    assert sorted(flat, key=lambda i: i.digest) == [a, b, c, d, e]


def test_an_ungated_mark_keeps_the_marked_nodes_own_sync_from_clearing_it(
    troth_home: Path,
) -> None:
    """70d telling 2, `PeerLock(gated=False)`: while a revocation holds node `n`'s mark (its
    `node.db.revoking` held without the gate), n's own settling sync reads no mark it may
    clear (`orphaned_marks`: not alone), and a gated peer's `alone()` is refused; once the
    revocation let go, the mark is n's to clear."""
    authority, _store = marked_node(troth_home)
    with open_node("revoker") as revoker, open_node("n") as node:
        with local_nodes_due(revoker, authority, now=NOW) as due:
            (mark,) = [m.mark for m in due.marked]
            assert orphaned_marks(node, authority) == []
            peer = PeerLock(node.path / "node.db.revoking")
            try:
                with peer.alone() as alone:
                    assert alone is False
            finally:
                peer.close()
            with pytest.raises(StorageError), due.marked[0].lock.alone():
                pass
        assert orphaned_marks(node, authority) == [mark]


def test_the_nodes_served_here_are_synced_only_with_a_committed_revocation(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """70d telling 4, `told=` called even when recording failed: a revocation the authority
    refused (acme revoking itself) syncs no node served here and asks no daemon; one whose
    trace record failed (StorageError) syncs them with the authority's feed already holding
    the entry (its commit came first): no node acts on a revocation never committed."""
    synced: list[int] = []
    daemons: list[str] = []
    with acme_and_agents() as world:
        hosted = world.acme._hosted

        def sync(host: Any, *, now: int) -> None:
            synced.append(host.held_feed(now=now).count)

        def record(*args: object, **kwargs: object) -> None:
            raise StorageError("the trace log is full")

        monkeypatch.setattr(troth._api.network, "sync_runtimes_here", sync)
        monkeypatch.setattr(troth.node.traces, "tell_local_nodes", lambda *a: daemons.append("l"))
        monkeypatch.setattr(troth.node.traces, "tell_hosting_node", lambda *a: daemons.append("h"))
        monkeypatch.setattr(troth.node.traces, "record_revocation", record)
        before = hosted.held_feed(now=world.acme._clock.now()).count
        with pytest.raises(TrothError):
            world.acme.revoke_identity(hosted.identifier)
        assert (synced, daemons) == ([], [])
        with pytest.raises(StorageError):
            world.acme.revoke(world.member)
        assert synced == [before + 1]
        assert daemons == ["h", "l"]


def test_a_rotation_one_authority_here_refused_tells_the_one_that_took_it(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """70d telling 3, a rotation taken only in part: `support` (node `agents`) is a member of
    acme (node `acme`) and beta (node `beta`), both here, and rotates; beta refuses the
    announcement (its quota spent: no supersession appended). The daemons here are asked
    once, of acme only (a supersession to sync), and beta's announcement stays pending with
    its error; no node is asked of a feed that did not change."""
    with troth.Node.open("acme") as a, troth.Node.open("beta") as b:
        acme, beta = a.create_authority(), b.create_authority()
        with troth.Node.open("agents") as agents:
            support = agents.identities.create("support")
            agents.enroll(acme.ticket({"orders.access": "read"}), identity=support)
            agents.enroll(beta.ticket({"orders.access": "read"}), identity=support)
        refusing = beta._hosted.identifier
    told: list[tuple[list[Identifier], bool]] = []
    real = authorities.rotated_here

    def rotated_here(node: Any, host: Any, ref: str, *, now: int) -> int | None:
        if host.identifier == refusing:
            raise AuthorityError(AuthorityFailure.QUOTA_EXCEEDED, "no supersession appended")
        return real(node, host, ref, now=now)

    def tell(node: object, taken: list[Identifier], *, hosting: bool = False) -> None:
        told.append((list(taken), hosting))

    monkeypatch.setattr(authorities, "rotated_here", rotated_here)
    monkeypatch.setattr(troth.node.traces, "tell_nodes_here", tell)
    with open_node("agents") as node:
        rotate_local(node, "support", clock=SystemClock())
        done, remote = authorities.announce_here(node, "support", now=SystemClock().now())
    assert told == [([acme._hosted.identifier], True)]
    errors = {row.authority: row.error for row in done}
    assert errors[acme._hosted.identifier] is None
    assert "quota" in (errors[refusing] or "")
    assert remote == []
