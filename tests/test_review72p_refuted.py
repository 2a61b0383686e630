"""Review 72p: attacks on review 72i's "node at the other end" rule
(`troth.node.channel_sources.from_other_end`) that did not work (each passes on the code as it
is; kept so a change that makes one work fails here)."""

from __future__ import annotations

import pytest

from tests.test_channel_manager import Net, run
from tests.test_review72i_ends import _AT_B, _Behind
from troth import limits
from troth.errors import RoutingError
from troth.node.channel_sources import from_other_end
from troth.routing import Address, RoutedMessage

_CONNECTION = Address("worker", "tcp-0123456789abcdef")
_END = "chan-0123456789abcdef"


@pytest.mark.parametrize(
    "second",
    [
        Address("worker", f"{_END}.enc"),  # a channel end's other worker (what `_deliver` puts)
        Address("worker", "chan-0123456789ABCDEF.dec"),  # upper case
        Address("worker", "chan-0123456789abcde.dec"),  # 15 digits
        Address("worker", "chan-0123456789abcdef0.dec"),  # 17 digits
        Address("worker", "xchan-0123456789abcdef.dec"),  # a prefix before
        Address("worker", "chan-0123456789abcdef.dec.x"),  # a suffix after
        Address("worker", "tcp-0123456789abcdef"),  # a connection's (its node's to a member)
        Address("relay", f"{_END}.dec"),  # not a worker
    ],
)
def test_only_a_channel_ends_reply_address_as_a_node_names_it_is_the_other_end(
    second: Address,
) -> None:
    """72p refuted: a member choosing a second hop that looks like a channel end's reply
    address: the check is a full match of `chan-` and 16 lower-case hex digits and `.dec`, a
    `/worker/` address; anything else, a channel end's `.enc` (what a node puts first in the
    return route of a message that came out of a channel: a member tunnelling through its
    channel with its node) and a connection's address included, is not the node itself."""
    assert from_other_end((_CONNECTION, Address("worker", f"{_END}.dec")))
    assert not from_other_end((_CONNECTION, second))


def test_only_two_hops_are_the_other_end() -> None:
    """72p refuted: a route of one hop (no reply address) or of three (a reply address past
    another hop: a member naming a channel end's address as its own, its node's connection to
    it before that) is not the node at the other end."""
    reply = Address("worker", f"{_END}.dec")
    assert not from_other_end((_CONNECTION,))
    assert not from_other_end((_CONNECTION, _AT_B, reply))
    assert not from_other_end((reply,))


def test_a_node_puts_its_connection_before_a_members_return_route_never_in_place_of_it() -> None:
    """72p refuted: a member cannot make its route at the next relay [the node's connection,
    a channel end's address]: what arrives over a connection (or out of a channel) has that
    connection (or channel end) put before the return route it named, and one named at the
    route limit is refused, not cut to fit."""
    reply = Address("worker", f"{_END}.dec")
    message = RoutedMessage((Address("worker", "next"),), (reply,), b"x")
    arrived = RoutedMessage.arrived(message.encode(), _AT_B)
    assert arrived.return_route == (_AT_B, reply)
    full = RoutedMessage((Address("worker", "next"),), (reply,) * limits.MAX_ROUTE_LENGTH, b"x")
    with pytest.raises(RoutingError):
        RoutedMessage.arrived(full.encode(), _AT_B)


def test_a_member_naming_its_nodes_channel_end_is_not_the_node() -> None:
    """72p refuted: a member behind b names as its own reply address b's own channel end's
    (the name collision: b's end with the hub, `chan-<16 hex>.dec`). Its channel with the hub
    still has b's connection to it between (three hops): not `direct`, while b's own is."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b")
        behind = _Behind(net, hub, b)
        own = await b.manager.open((behind.connection.address,))
        await behind.open(own.dec)
        ends = {end.peer_route[1]: end for end in hub.manager.ends.values()}
        assert ends[_AT_B].peer_route[2:] == (own.dec,)
        assert not ends[_AT_B].direct
        assert [end.direct for route, end in ends.items() if route != _AT_B] == [True]

    run(test)
