"""The no-route notice (docs/formats.md, "No-route notice"; docs/protocols.md, "Unanswered
channels"): what a node says, over its own secure channel with the node at the other end of a
connection, when a packet that came over that connection named a node-local address
(`/worker/...`) the node serves no more, say the connection of a member behind its relay that
restarted; and what each node back along the packet's way says to the one before it (review
50f, relays 2). Sans-IO: the bytes only; troth.node.no_route sends and takes them.

    notice (v1) = ["troth.route.noroute", 1, dead address, sender address]
    notice (v2) = ["troth.route.noroute", 2, [address, ...] (the way), [address, ...] (sender)]
    address     = [kind (text), value (text)]

The way is the hops from the receiver's connection to the dead address, that address last;
the sender route the rest of the dropped packet's return route past the receiver's own
connection, the sender's channel end last. Version 1 is the notice for one hop each (a way of
the dead address only, a sender of its channel end only) and the only encoding of it, so a
node from review 49b reads it; version 2 every other one.

It travels as a routed message to `NOTICE_SERVICE` (`/service/no-route`) inside the channel,
so it is authenticated by that channel; a node from before review 49b has no such service and
drops it as any message to an address it does not serve (its channel is not answered: the
notice carries no request id); a node from review 49b drops a version 2 one as malformed."""

from __future__ import annotations

from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.routing.address import Address, Route, route_from_cbor, route_to_cbor

__all__ = ["NOTICE_SERVICE", "NO_ROUTE_TYPE", "NO_ROUTE_VERSION", "no_route", "parse_no_route"]

NO_ROUTE_TYPE: Final = "troth.route.noroute"
NO_ROUTE_VERSION: Final = 2
"""The newest version (version 1: a notice whose way and sender are one address each)."""
NOTICE_SERVICE: Final = Address("service", "no-route")
"""Where a no-route notice goes inside the channel (a name no node service takes)."""
_MAX_NOTICE: Final = 64 + 2 * limits.MAX_ROUTE_LENGTH * (limits.MAX_ADDRESS_TEXT + 16)


def no_route(way: Route, sender: Route) -> bytes:
    """A notice that a packet from `sender` (its return route past the receiver's connection:
    the sender's channel end last) along `way` (the hops from the receiver's connection on)
    was dropped, the last of `way` being served no more (node-local addresses, one or more
    each: the caller's to ensure)."""
    if len(way) == 1 and len(sender) == 1:
        return cbor.encode([NO_ROUTE_TYPE, 1, *route_to_cbor(way), *route_to_cbor(sender)])
    return cbor.encode([NO_ROUTE_TYPE, NO_ROUTE_VERSION, route_to_cbor(way), route_to_cbor(sender)])


def parse_no_route(payload: bytes | bytearray | memoryview) -> tuple[Route, Route]:
    """(way, sender route) of a notice (DecodeError when it is not one)."""
    value = cbor.expect_array(cbor.decode(bytes(payload), max_bytes=_MAX_NOTICE), "notice", 4)
    if len(value) > 1 and value[1] == 1 and not isinstance(value[1], bool):
        cbor.expect_header(value, NO_ROUTE_TYPE, 1, "no-route notice")
        way, sender = route_from_cbor([value[2]]), route_from_cbor([value[3]])
    else:
        cbor.expect_header(value, NO_ROUTE_TYPE, NO_ROUTE_VERSION, "no-route notice")
        way, sender = route_from_cbor(value[2]), route_from_cbor(value[3])
        if len(way) == 1 and len(sender) == 1:
            raise DecodeError("no-route notice: one hop each is version 1")
    _check(way, sender)
    return way, sender


def _check(way: Route, sender: Route) -> None:
    if not way or not sender:
        raise DecodeError("no-route notice: an empty way or sender")
    if any(address.kind != "worker" for address in (*way, *sender)):
        raise DecodeError("no-route notice: every address is node-local (worker)")
