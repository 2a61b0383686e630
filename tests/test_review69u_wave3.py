"""Review 69u (wave3): 69p's fixes, due marks settled by an announcement told in-process
(flake 1) and the CLOSE frame's detail (flake 2).

wave3 1 (low: a peer's text kept and logged without the bound the sender keeps): 69p bounded
the detail a node sends after a CLOSE frame's code to `MAX_CLOSE_DETAIL` (512) bytes, but the
receiving side decoded and quoted whatever the frame carried, up to a whole channel frame
(64 KiB): escaped as one line (`one_line_text`: a control byte becomes four characters), a
peer's close became a ~256 KiB `ChannelError` detail, shown, kept with the error and logged,
at every channel it opened and closed. What one side may send is all the other keeps now: the
detail is cut at `MAX_CLOSE_DETAIL` bytes (at a character) before it is decoded and quoted,
and a `…` says it was cut.

wave3 2 (medium: an honest member refused after her rotation, 69p's flake 1 by another way):
a running node announcing a rotation to the authority it hosts itself (`_announce_hosted`)
marked the other nodes here due a sync of its feed and told the daemons only: a node served in
the same process read its mark at its next poll and refused that authority's members, the
freshly rotated one too, until its own sync ended. It is told now as `announce_locally` tells
them (`Announcer.told_here`, `sync_runtimes_here`): synced, and its marks settled.

wave3 3 (low: a race, a revocation dropped from a node's memory until its next round): 69p
made another runtime's announcer thread install feeds in a node served here
(`sync_runtimes_here` → `NodeTrust.learn_held` → `set_feed`), as `Node.rotate` and
`Authority.revoke` do from the caller's thread, while the node's own worker installs the feeds
it syncs. `set_feed` checked that a feed is not older than the one held, then installed it:
between the two, the other thread installed a newer one (a revocation more), and the older
went in ("a feed only grows" broken; the node admitted the revoked member until its next
read of the store). A lost `_generation` increment likewise kept standings cached on the
replaced feed. The check and the install (and the marks' read and install, `read_due`) are
one step now, under a lock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import cast

import pytest

import troth
from tests.support.channels import T, closed, make_world, pump
from troth.channel import secure
from troth.credentials.revocation import VerifiedFeed
from troth.errors import ChannelFailure
from troth.identity import Identifier
from troth.limits import MAX_CLOSE_DETAIL
from troth.node import open_node
from troth.node.trust import NodeTrust


def test_a_peers_oversized_close_detail_is_cut_to_what_a_node_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wave3 1: a peer sending 60,000 control bytes of detail (its own code, not troth's
    `close_detail`): the receiver keeps at most MAX_CLOSE_DETAIL bytes of it, quoted."""
    world = make_world()
    a, b = world.initiator(), world.responder()
    pump(a, b)
    monkeypatch.setattr(secure, "close_detail", lambda detail: detail.encode())
    b.close(ChannelFailure.NORMAL, "\x00" * 60_000)
    monkeypatch.undo()
    detail = closed([e for p in b.outgoing() for e in a.receive(p, T + 2)]).detail
    assert detail.startswith("\\x00\\x00")
    assert len(detail) <= 4 * MAX_CLOSE_DETAIL + 1
    assert detail.endswith("\u2026")


def test_a_peers_close_detail_cut_inside_a_character_shows_no_replacement() -> None:
    """wave3 1: a detail of multibyte characters past the limit is cut at a character."""
    world = make_world()
    a, b = world.initiator(), world.responder()
    pump(a, b)
    b.close(ChannelFailure.NORMAL, "€" * 400)  # (close_detail cuts it at 510 bytes)
    detail = closed([e for p in b.outgoing() for e in a.receive(p, T + 2)]).detail
    assert detail == "€" * (MAX_CLOSE_DETAIL // 3)


def test_a_peers_oversized_multibyte_detail_is_cut_at_a_character(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """wave3 1: 1,200 bytes of `€` (3 bytes each) from a peer: 170 of them kept (510 bytes, the
    cut at 512 falls inside the 171st), no replacement character, and the `…`."""
    world = make_world()
    a, b = world.initiator(), world.responder()
    pump(a, b)
    monkeypatch.setattr(secure, "close_detail", lambda detail: detail.encode())
    b.close(ChannelFailure.NORMAL, "€" * 400)
    monkeypatch.undo()
    detail = closed([e for p in b.outgoing() for e in a.receive(p, T + 2)]).detail
    assert detail == "€" * 170 + "\u2026"


@pytest.fixture
def hosted(troth_home: Path) -> tuple[Identifier, Identifier]:
    """acme hosting its authority, its local identity `ops` a member of it, rotated as
    compromised with its announcement pending; desk trusting acme (holding its feed).
    Returns ops's identifier and acme's."""
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        ops = acme.identities.create("ops")
        acme.enroll(authority.ticket({"team.name": "x"}), identity=ops)
        acme_id = acme.identity.identifier
    with troth.Node.open("desk"):
        pass
    with open_node("desk") as node:
        node.wallet.trust(acme_id, "node:acme", now=int(time.time()))
    with open_node("acme") as node:
        node.identities.rotate("ops", now=int(time.time()), compromised=True)
        assert node.wallet.unannounced("ops")[1] != []
    return ops.identifier, acme_id


def test_a_rotation_announced_to_the_hosted_authority_settles_a_node_served_here(
    hosted: tuple[Identifier, Identifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    """wave3 2: desk served, then acme: acme's start round announces ops's rotation to the
    authority it hosts (desk marked due a sync first). Desk's poll of its marks (its own poll
    waits an hour here; the test reads them as it would) finds none: it was told, and holds
    the supersession."""
    monkeypatch.setattr("troth.node.duewatch.DUE_POLL", 3600.0)
    ops, authority = hosted

    async def main() -> int:
        with troth.Node.open("desk") as desk, troth.Node.open("acme") as acme:
            async with desk.serve(listen=("127.0.0.1", 0)) as at, acme.serve():
                trust = at._runtime.trust
                await at._runtime.worker.run(trust.read_due)  # desk's poll of its marks
                return len(trust.due)

    assert asyncio.run(main()) == 0
    with open_node("acme") as node:
        assert node.wallet.unannounced("ops")[1] == []  # announced by acme's round
    with open_node("desk") as node:
        assert node.wallet.store.syncs_due() == []
        feed = node.wallet.held_feed(authority)
        assert feed is not None
        assert feed.supersession(ops) is not None


class _Feed:
    """A feed as `NodeTrust.set_feed` weighs it (its count). With `go`: the first read of its
    count says so (`entered`) and waits (up to 2 s) for `go`, as a thread preempted between
    the check and the install."""

    def __init__(self, count: int, go: threading.Event | None = None) -> None:
        self._count = count
        self._go = go
        self.entered = threading.Event()

    @property
    def count(self) -> int:
        if self._go is not None:
            go, self._go = self._go, None
            self.entered.set()
            go.wait(2)
        return self._count


def test_a_feed_installed_from_another_thread_never_replaces_a_newer_one(
    troth_home: Path,
) -> None:
    """wave3 3: desk's trust holds acme's feed of 4 entries; the announcer's thread of
    another runtime (`sync_runtimes_here`'s `learn_held`) installs one of 5, and between its
    check and its install desk's own sync installs one of 6 (a revocation more). Desk keeps
    the 6: a feed only grows."""
    with troth.Node.open("desk"):
        pass
    acme = Identifier(bytes(32))
    with open_node("desk") as node:
        trust = NodeTrust(node, None)
        try:
            trust.set_feed(acme, cast(VerifiedFeed, _Feed(4)))
            go = threading.Event()
            older = _Feed(5, go)
            told = threading.Thread(target=trust.set_feed, args=(acme, cast(VerifiedFeed, older)))
            told.start()
            assert older.entered.wait(2)  # checked against the 4, not installed yet
            own = threading.Thread(target=trust.set_feed, args=(acme, cast(VerifiedFeed, _Feed(6))))
            own.start()
            own.join(0.5)  # (with the check and the install as one: it waits for `told`)
            go.set()
            told.join()
            own.join()
            assert trust.feeds[acme].count == 6
        finally:
            trust.detach()
