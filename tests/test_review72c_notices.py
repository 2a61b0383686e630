"""Review 72c, notices: findings on a relay's cut marks (review 71s, relaywait 1; each test
failed before its fix).

1. (low) `AllowSet.forget_each` marked as cut off (`cut_from`) an address it took from the
   reply paths or the endpoints held while the set still allowed it another way (a fixed
   address, `permit`, or one of the kinds it allows): `cut_from` then said the source was cut
   off from an address `allows` still let it reach, and the useless mark took one of the
   `max_reply_paths` kept, pushing out a real one sooner. No routing decision changed (the
   router asks `allows` first; `NoRouteNotices._pass_back` takes either), so it was latent;
   found by review 72c's refuted 1 (a property over allow-set operations). Now only an
   address the set no longer allows is marked.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from tests.test_review71w_refuted import _END as _CHANNEL
from tests.test_review71w_refuted import _send, _settle
from tests.test_review71w_wave4a import _Chain, _connection, _link
from troth.node.no_route import NoRouteNotices
from troth.routing import Address, AllowSet, RoutedMessage, Router
from troth.routing.notice import NOTICE_SERVICE, no_route
from troth.transport.connection import Connection

if TYPE_CHECKING:
    from troth.node.channel_ends import ChannelEnd
    from troth.node.channels import ChannelManager


def test_a_cut_marks_no_address_the_set_still_allows() -> None:
    """72c notices 1: a held address also fixed (`permit`), and a reply path of a kind the set
    allows, are taken by a cut and still allowed: neither is marked, nor spends a mark; the
    reply path the cut took is marked."""
    allowed = AllowSet(kinds=frozenset({"relay"}), max_reply_paths=2)
    fixed, kind, gone = Address("worker", "tcp-f"), Address("relay", "r"), Address("worker", "g")
    allowed.hold(fixed)
    allowed.permit(fixed)
    allowed.allow(kind)
    allowed.allow(gone)
    allowed.forget_each({fixed, kind, gone})
    assert allowed.allows(fixed)
    assert allowed.allows(kind)
    assert not allowed.allows(gone)
    assert [a for a in (fixed, kind, gone) if allowed.cut_from(a)] == [gone]


# -- notices 2: a party behind the node at the other end of a connection ---------------------


def _behind(connection: Address, name: str) -> Any:
    """A channel this node holds with a party one hop past the node at the other end of
    `connection` (a member of that node that reached this one through it: review 66q): a
    peer opened it over a connection this node accepted, so it is `direct` too."""
    end = _link(connection, name)
    end.peer_route = (connection, Address("worker", f"{name}-at-node"), end.peer_route[-1])
    return end


def test_a_notice_for_a_connection_goes_to_the_node_at_its_other_end_only() -> None:
    """72c notices 2 (sending): a packet from a party behind the node `h` at the other end of
    this relay's connection is dropped for a hop `h` reached that no worker serves; the notice
    goes over this relay's channel with `h` itself, never over the channel a member behind
    `h` holds with this relay over the same connection (before: whichever of them came first,
    so that member got another party's return route and the node its notice never)."""

    h = _connection()
    member, link = _behind(h.address, "member"), _link(h.address, "h-link")
    assert asyncio.run(notices_over(h, (member, link))) == [link.enc]


async def notices_over(h: Connection, ends: tuple[Any, ...]) -> list[Address]:
    """The channels (their `.enc`) of `ends` (this relay's, over connection `h`) the notice
    goes over when a packet from a party behind the node at the other end of `h` is dropped for
    a hop `h` reached that no worker serves."""
    dead = Address("worker", "tcp-dead")
    hub, router = _Chain(ends), Router()
    router.unroutable = NoRouteNotices(cast("ChannelManager", hub)).unroutable
    h.allow(dead)
    await _send(router, h, dead, Address("worker", "tcp-z-at-h"))
    await _settle()
    return [m.onward[0] for m in hub.sent]


def test_a_notice_from_a_party_behind_the_node_at_the_other_end_is_not_taken() -> None:
    """72c notices 2 (taking): a member behind the node at the other end of connection `h`
    sends this relay a notice naming a sender's connection `s` that reached `h` (a way the
    sender's packets went): it is not that node, so the notice is neither passed back (before:
    passed to the sender, as from the node at the other end of `h`) nor closes anything; the
    same notice from that node itself is passed back (the control)."""

    async def test() -> None:
        h, s = _connection(), _connection()
        s.allow(h.address)
        member, link = _behind(h.address, "member"), _link(h.address, "h")
        to_s = _link(s.address, "s")
        to_s.source = s
        hub = _Chain((member, link, to_s))
        hub.router.has = lambda address: address == s.address
        notices = NoRouteNotices(cast("ChannelManager", hub))
        notice = no_route((Address("worker", "tcp-dead"),), (s.address, _CHANNEL))
        for end in (member, link):
            notices.received(cast("ChannelEnd", end), RoutedMessage((NOTICE_SERVICE,), (), notice))
            await _settle()
        assert [m.onward[0] for m in hub.sent] == [to_s.enc]  # the node's own only
        assert hub.counters.no_route_notices_forwarded == 1

    asyncio.run(test())
