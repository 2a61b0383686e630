"""Review 63k, limits end to end: attacks (largest objects a producer makes, sent through the
next hop) that the code already refuses or carries. Each test would fail if the bound it names
broke.

1. An http-inject forward request at every bound `check_forward_size` and the engine allow at
   once (body MAX_INJECT_REQUEST_BYTES, MAX_INJECT_HEADERS headers of MAX_INJECT_HEADERS_TOTAL
   characters, each a 2-byte UTF-8 character, the longest target) is a service request within
   MAX_SERVICE_MESSAGE that the broker's decoder reads back.
2. The largest answer a served broker gives a forward (a body at MAX_INJECT_RESPONSE_BYTES,
   headers at their bounds in 2-byte characters, as http.client decodes them as Latin-1, and
   a reason as long as http.client reads a status line) is within MAX_SERVICE_MESSAGE, which
   `call` decodes answers with.
3. The chains a node shows at a handshake (`fitting_chains`, beside the smallest history) fit
   an in-band refresh too: the CREDENTIALS frame carrying them is within one frame.
"""

from __future__ import annotations

from troth import limits
from troth.channel.payloads import HEADER, AuthPayload, fitting_chains
from troth.channel.secure import MAX_PLAINTEXT
from troth.encoding import cbor
from troth.node.services.protocol import RESPONSE, VERSION, decode_request, encode_request
from troth.secrets import HttpRequest
from troth.secrets.engines.http_inject import HttpResponse, check_forward_size
from troth.secrets.lease import LeaseId
from troth.secrets.wire import ForwardArgs, encode_response

_WIDE = "\u00ff"  # a header character of 2 UTF-8 bytes (the widest a header value takes)


def _widest_headers() -> tuple[tuple[str, str], ...]:
    """MAX_INJECT_HEADERS headers of MAX_INJECT_HEADERS_TOTAL characters in all."""
    count = limits.MAX_INJECT_HEADERS
    each = limits.MAX_INJECT_HEADERS_TOTAL // count - 4
    return tuple((f"X-{n:02d}", _WIDE * each) for n in range(count))


def test_the_largest_forward_request_fits_the_service_request() -> None:
    target = "/" + "a" * (limits.MAX_INJECT_TARGET - 1)
    request = HttpRequest("POST", target, _widest_headers(), bytes(limits.MAX_INJECT_REQUEST_BYTES))
    check_forward_size(request)  # within every bound
    wire = ForwardArgs(LeaseId.new(0), request).to_wire()
    encoded = encode_request((1 << 64) - 1, "forward", wire)
    assert len(encoded) <= limits.MAX_SERVICE_MESSAGE
    _, method, arguments = decode_request(encoded)
    assert method == "forward"
    assert ForwardArgs.from_wire(arguments).request == request


def test_the_largest_forward_answer_fits_the_service_answer() -> None:
    response = HttpResponse(
        599, _WIDE * 65_536, _widest_headers(), bytes(limits.MAX_INJECT_RESPONSE_BYTES)
    )
    answer = cbor.encode([RESPONSE, VERSION, (1 << 64) - 1, True, encode_response(response)])
    assert len(answer) <= limits.MAX_SERVICE_MESSAGE


def test_chains_shown_at_a_handshake_fit_an_in_band_refresh() -> None:
    chains = tuple(bytes([n]) * 9_000 for n in range(limits.MAX_CHANNEL_CREDENTIALS))
    shown = fitting_chains(b"", b"", chains)
    assert 6 <= len(shown) < len(chains)  # the handshake's payload filled
    assert len(AuthPayload(b"", b"", shown).encode()) <= limits.MAX_CHANNEL_FRAME
    assert HEADER.size + len(cbor.encode(list(shown))) <= MAX_PLAINTEXT
