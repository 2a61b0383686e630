"""Review 72x: attacks on review 72r's room kept for a node's own handshakes in progress
(`channel_sources.behind_other_end`, `forwarded_room` of `max_half_open_per_source`) that did
not work (each passes on the code as it is; kept so a change that makes one work fails here)."""

from __future__ import annotations

from tests.support.channels import channel_reply
from tests.test_review72p_ends2 import _connection
from troth.node.channel_sources import behind_other_end, from_other_end
from troth.routing import Address, RoutedMessage
from troth.transport.connection import Connection

_CHAN_DEC = Address("worker", "chan-00000000000000aa.dec")
_HUB = (Address("worker", "channels"),)


def _accepted() -> Connection:
    return _connection(outgoing=False, peer="198.51.100.7")


def _at_hub(return_route: tuple[Address, ...], *hops: Address) -> tuple[Address, ...]:
    """The return route a message 1 sent with `return_route` has at the hub, stepped in at
    each of `hops` (a node's connection or channel end it came in by) as the code does it
    (`RoutedMessage.arrived`), the hub's accepted connection last."""
    message = RoutedMessage(_HUB, return_route, b"")
    for via in hops:
        message = RoutedMessage.arrived(message.encode(), via)
    return message.return_route


def test_a_member_naming_a_channel_ends_reply_address_is_still_behind_the_node() -> None:
    """72x refuted 1: a member behind b names `/worker/chan-<16 hex>.dec` as its reply address
    to pass for b itself (the whole 16 handshakes in progress). b steps its connection to the
    member into the route as the message comes in, so the hub sees three hops: still a party
    behind b, held to `forwarded_room`."""
    hub_side = _accepted()
    route = _at_hub((_CHAN_DEC,), Address("tcp", "b-to-member"), hub_side.address)
    assert len(route) == 3
    assert not from_other_end(route)
    assert behind_other_end(hub_side, route, "tcp 198.51.100.7")


def test_a_member_tunnelled_through_its_channel_to_the_node_naming_no_reply() -> None:
    """72x refuted 2: a member with a secure channel to b sends message 1 inside it, onward to
    the hub, naming no reply address, so the hub's route is two hops, the second b's channel end
    for the member. The inner message steps in at that end's `.enc` address, not `.dec`
    (`ChannelManager`'s decrypt path), so it is not taken for b's own channel end."""
    end_enc = Address("worker", "chan-00000000000000bb.enc")
    hub_side = _accepted()
    route = _at_hub((), end_enc, hub_side.address)
    assert route == (hub_side.address, end_enc)
    assert behind_other_end(hub_side, route, "tcp 198.51.100.7")


def test_a_direct_client_naming_a_channel_end_gets_the_whole_limit() -> None:
    """72x refuted 3: a client that connects directly (no node behind it) and is a troth node or
    library of any version names its channel end `/worker/chan-<16 hex>.dec` (`os.urandom(8)`
    hex since the first channel manager), so it keeps all its handshakes in progress; only a
    non-troth client naming another reply address is held to `forwarded_room` (documented in
    docs/protocols.md, the half-open per-source row)."""
    hub_side = _accepted()
    own = _at_hub((_CHAN_DEC,), hub_side.address)
    assert not behind_other_end(hub_side, own, "tcp 198.51.100.7")
    other = _at_hub((Address("worker", "client-reply"),), hub_side.address)
    assert behind_other_end(hub_side, other, "tcp 198.51.100.7")


def test_the_load_tests_flood_is_the_strongest_attacker_of_one_address() -> None:
    """72x refuted 4: the hostile-load flood (`tests.support.load.message_1`) names a channel
    end's reply address (`channel_reply`), so each flooding address counts as the node at the
    other end itself, with its source's whole 16 handshakes in progress, not the 8 of a party
    behind it: `-m load` still tests the worst one address can do (issue #8: a flood from one
    address must not lock out others; `test_a_handshake_flood_leaves_room_for_a_legitimate_
    handshake` passes), not a weaker attacker."""
    hub_side = _accepted()
    route = _at_hub((channel_reply("flood-1"),), hub_side.address)
    assert not behind_other_end(hub_side, route, "tcp 198.51.100.7")
