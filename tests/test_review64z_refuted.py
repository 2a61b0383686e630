"""Review 64z, formats: attacks on the formats' limits end to end that did not work. Each test
is a real attempt that would fail if the defence it names broke.

- An encoder that writes what the other side refuses: a service request whose arguments nest
  deeper than `MAX_CBOR_DEPTH` (the encoder itself takes 1,000 levels, `MAX_CBOR_ENCODE_DEPTH`)
  or hold more than `MAX_CBOR_ITEMS` items is refused at the sender (DecodeError, "cannot
  encode value"), never sent to be dropped (review 51e, calls 6).
- The largest MCP frame (`MAX_MCP_FRAME`) sent as a `send` request with the largest request id
  and a reply address of 1,024 bytes stays within `MAX_SERVICE_MESSAGE`, and the node reads it.
- A route of 16 hops of 256-character addresses relayed hop by hop to its end: the header each
  relay writes (its first hop taken, the connection it came over added to the return route)
  stays within `MAX_ROUTE_HEADER_BYTES`, and the next relay reads it; a peer's header past the
  limit (a full return route added) is refused by the reader.
"""

from __future__ import annotations

import pytest

from troth import limits
from troth.encoding import cbor
from troth.errors import DecodeError, RoutingError
from troth.integrations.mcp.frames import SESSION_BYTES, McpFrame
from troth.node.services.protocol import MAX_REQUEST_ID, decode_request, encode_request
from troth.routing import Address, RoutedMessage
from troth.transport.framing import frame


def _nested(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


def test_a_request_nested_deeper_than_the_other_side_reads_is_refused_at_the_sender() -> None:
    """Within the encoder's 1,000 levels, past the decoder's 16: refused before it is sent;
    at the decoder's own depth, sent and read."""
    with pytest.raises(DecodeError, match=r"cannot encode value.*nested deeper than"):
        encode_request(1, "m", _nested(20))
    with pytest.raises(DecodeError, match=r"cannot encode value.*data items"):
        encode_request(1, "m", [[]] * limits.MAX_CBOR_ITEMS)
    deepest = _nested(limits.MAX_CBOR_DEPTH - 2)  # the envelope is a level of its own
    assert decode_request(encode_request(1, "m", deepest)) == (1, "m", deepest)


def test_the_largest_mcp_frame_fits_a_service_request() -> None:
    """A frame of exactly MAX_MCP_FRAME bytes in `send [frame, reply address]`."""
    empty = len(McpFrame(bytes(SESSION_BYTES), b"").encode())
    message = b"{" * (limits.MAX_MCP_FRAME - empty - 4)  # its byte string's longer header
    data = McpFrame(bytes(SESSION_BYTES), message).encode()
    assert len(data) == limits.MAX_MCP_FRAME
    reply = "\u00e9" * 512  # 1,024 bytes of UTF-8
    request = encode_request(MAX_REQUEST_ID, "send", [data, reply])
    assert len(request) <= limits.MAX_SERVICE_MESSAGE
    _, _, (got, _) = decode_request(request)
    assert McpFrame.decode(got).message == message


def test_the_largest_route_stays_readable_at_every_hop() -> None:
    """16 hops of 256 characters, relayed to the last: each hop's frame is read by the next."""
    hops = tuple(Address("relay", f"{i:02d}" + "r" * 254) for i in range(16))
    message = RoutedMessage(hops, (), b"packet")
    for hop in range(16):
        data = frame(message.encode())  # RoutingError if the header were past the limit
        assert len(message.header()) - 2 <= limits.MAX_ROUTE_HEADER_BYTES
        via = Address("worker", f"tcp-h{hop:016x}-{'0' * 16}")
        message = RoutedMessage.arrived(data[5:], via)
        assert message.onward[0] == hops[hop]
        message = message.stepped()
    assert not message.onward
    assert len(message.return_route) == 16


def test_a_peers_header_past_the_limit_is_refused() -> None:
    """A peer's message with 16 onward and 16 return hops of 256 characters (a header of some
    8.6 KB, which no troth writes) is refused by the reader, never read past the limit."""
    hops = tuple(Address("relay", f"{i:02d}" + "r" * 254) for i in range(16))
    body = cbor.encode([[list(a) for a in hops], [list(a) for a in hops]])
    assert len(body) > limits.MAX_ROUTE_HEADER_BYTES
    with pytest.raises(DecodeError):
        RoutedMessage.decode(len(body).to_bytes(2, "big") + body + b"packet")
    with pytest.raises(RoutingError):
        RoutedMessage(hops, hops, b"").encode()
