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
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import troth
from tests.support.channels import T, closed, make_world, pump
from troth.channel import secure
from troth.errors import ChannelFailure
from troth.identity import Identifier
from troth.limits import MAX_CLOSE_DETAIL
from troth.node import open_node


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
