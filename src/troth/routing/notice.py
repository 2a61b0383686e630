"""The no-route notice (docs/formats.md, "No-route notice"; docs/protocols.md, "Unanswered
channels"): what a node says, over its own secure channel with a sender at the other end of a
connection, when a packet that sender sent over that connection named a node-local address
(`/worker/...`) the node serves no more, say the connection of a member behind its relay that
restarted. Sans-IO: the bytes only; troth.node.no_route sends and takes them.

    notice = ["troth.route.noroute", 1, dead address, sender address]
    address = [kind (text), value (text)]

It travels as a routed message to `NOTICE_SERVICE` (`/service/no-route`) inside the channel,
so it is authenticated by that channel; a node from before review 49b has no such service and
drops it as any message to an address it does not serve (its channel is not answered: the
notice carries no request id)."""

from __future__ import annotations

from typing import Final

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError
from troth.routing.address import Address, route_from_cbor, route_to_cbor

__all__ = ["NOTICE_SERVICE", "NO_ROUTE_TYPE", "NO_ROUTE_VERSION", "no_route", "parse_no_route"]

NO_ROUTE_TYPE: Final = "troth.route.noroute"
NO_ROUTE_VERSION: Final = 1
NOTICE_SERVICE: Final = Address("service", "no-route")
"""Where a no-route notice goes inside the channel (a name no node service takes)."""
_MAX_NOTICE: Final = 64 + 2 * (limits.MAX_ADDRESS_TEXT + 16)


def no_route(dead: Address, sender: Address) -> bytes:
    """A notice that a packet from `sender` (the address after the connection in its return
    route: the sender's channel end) to `dead` was dropped, `dead` being served no more."""
    return cbor.encode(
        [NO_ROUTE_TYPE, NO_ROUTE_VERSION, *route_to_cbor((dead,)), *route_to_cbor((sender,))]
    )


def parse_no_route(payload: bytes | bytearray | memoryview) -> tuple[Address, Address]:
    """(dead address, sender address) of a notice (DecodeError when it is not one)."""
    value = cbor.expect_array(cbor.decode(bytes(payload), max_bytes=_MAX_NOTICE), "notice", 4)
    cbor.expect_header(value, NO_ROUTE_TYPE, NO_ROUTE_VERSION, "no-route notice")
    (dead,) = route_from_cbor([value[2]])
    (sender,) = route_from_cbor([value[3]])
    if dead.kind != "worker" or sender.kind != "worker":
        raise DecodeError("no-route notice: both addresses are node-local (worker)")
    return dead, sender
