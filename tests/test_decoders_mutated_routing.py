"""Mutation fuzzing of the decoders of routing: routed messages (the route header every hop
reads from its peers' frames), no-route notices (versions 1 and 2) and routes as text (a
ticket's address, a node's configuration, the CLI), at the limits too
(tests/support/limit_mutations.py: routes of MAX_ROUTE_LENGTH hops and one more, addresses of
MAX_ADDRESS_TEXT characters and one more).

The mutations and the rule every property checks: tests/support/decoder_vectors.py. The header
and the notices are canonical CBOR (docs/formats.md, "Encoding"): what decodes encodes again to
the same bytes.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.decoder_vectors import CHANNEL
from tests.support.limit_mutations import QUICK, hostile
from tests.support.mutations import as_text, mutated, typed
from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, RoutingError
from troth.routing import Address, RoutedMessage, format_route, parse_route
from troth.routing.notice import no_route, parse_no_route

NOTICE = CHANNEL["no_route_notice_v2"]
WAY, SENDER = parse_route(NOTICE["way"]), parse_route(NOTICE["sender"])
PAYLOAD = b"\x01the payload, as it is"
MESSAGE = RoutedMessage(WAY, SENDER, PAYLOAD).encode()
HEADER = MESSAGE[2 : -len(PAYLOAD)]
VIA = Address("tcp", "h0123456789abcdef-0011223344556677")


def _message(header: bytes) -> bytes:
    return struct.pack(">H", len(header)) + header + PAYLOAD


@QUICK
@given(data=st.data())
def test_routed_message(data: st.DataObject) -> None:
    """A message's bytes mutated, or its header's CBOR (its length prefix made to fit)."""
    assert RoutedMessage.decode(MESSAGE).encode() == MESSAGE
    mutant = data.draw(st.one_of(mutated(MESSAGE), hostile(HEADER).map(_message)))
    typed(lambda b: RoutedMessage.decode(b), mutant, valid_if=lambda m: m.encode() == mutant)
    typed(lambda b: RoutedMessage.arrived(b, VIA), mutant)
    typed(lambda b: RoutedMessage.decode(b).next_hop(), mutant)


@pytest.mark.parametrize("version", ["no_route_notice", "no_route_notice_v2"])
@QUICK
@given(data=st.data())
def test_no_route_notice(version: str, data: st.DataObject) -> None:
    original = bytes.fromhex(CHANNEL[version]["bytes"])
    assert no_route(*parse_no_route(original)) == original
    mutant = data.draw(hostile(original))
    typed(parse_no_route, mutant, valid_if=lambda notice: no_route(*notice) == mutant)


@pytest.mark.parametrize("text", [NOTICE["way"], NOTICE["sender"], "/tcp/[::1]:4000"])
@QUICK
@given(data=st.data())
def test_route_text(text: str, data: st.DataObject) -> None:
    """A route's text mutated: a route (its text again: the same hops) or RoutingError."""
    mutant = as_text(data.draw(mutated(text.encode())))
    typed(
        lambda _: parse_route(mutant),
        b"",
        valid_if=lambda route: parse_route(format_route(route)) == route,
    )


def test_routes_of_the_most_hops_and_of_one_more() -> None:
    """MAX_ROUTE_LENGTH hops each way travel; a header with a route of one more is refused
    (DecodeError: it is a peer's frame), and so is such a route's text (RoutingError)."""
    most = (VIA,) * limits.MAX_ROUTE_LENGTH
    message = RoutedMessage(most, most, PAYLOAD).encode()
    assert RoutedMessage.decode(message).onward == most
    over = ["tcp", VIA.value]  # the header written by hand: the encoder refuses it
    longer = cbor.encode([[over] * (limits.MAX_ROUTE_LENGTH + 1), [over]])
    with pytest.raises(DecodeError):
        RoutedMessage.decode(_message(longer))
    with pytest.raises(RoutingError):
        parse_route(format_route((VIA,) * (limits.MAX_ROUTE_LENGTH + 1)))
