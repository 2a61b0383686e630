"""Regenerate tests/vectors/routing/routed_vectors.json: routed messages in TCP frames
(docs/formats.md, "Routed message and TCP frame"): one as its sender writes it, the same as the
relay it passes forwards it (its first hop taken, the connection it came over put at the front
of its return route), and the largest route header a sender writes (16 hops of 256-character
addresses).

    python tests/vectors/routing/generate.py > tests/vectors/routing/routed_vectors.json

Nothing is random: the bytes follow from the routes and the payload alone;
tests/test_review64z_formats.py rebuilds them byte for byte and reads the stored ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from troth import limits
from troth.routing import Address, RoutedMessage, format_route, parse_route
from troth.transport.framing import frame

PAYLOAD = bytes.fromhex("0200000000000000000700") + b"a channel packet"
"""A payload as routing sees it: raw bytes, never re-encoded."""
SENT = RoutedMessage(
    parse_route("/tcp/relay.example:7400/relay/alice/service/authority"), (), PAYLOAD
)
"""What a sender writes to its relay: the onward route, an empty return route."""
VIA = Address("worker", "tcp-h0123456789abcdef-0011223344556677")
"""The connection the relay took the message from, as it names an accepted one."""
LARGEST = RoutedMessage(
    tuple(Address("relay", f"{i:02d}" + "r" * (limits.MAX_ADDRESS_TEXT - 2)) for i in range(16)),
    (),
    b"",
)
"""The largest route a sender writes: MAX_ROUTE_LENGTH hops of MAX_ADDRESS_TEXT characters."""


def _vector(message: RoutedMessage) -> dict[str, Any]:
    """A routed message's routes, payload, header and TCP frame."""
    return {
        "onward": format_route(message.onward),
        "return": format_route(message.return_route),
        "payload": bytes(message.payload).hex(),
        "header": message.header().hex(),
        "frame": frame(message.encode()).hex(),
    }


def vectors() -> dict[str, Any]:
    """Every vector of routed_vectors.json, with its provenance."""
    return {
        "_provenance": "troth, tests/vectors/routing/generate.py (docs/formats.md, 'Routed "
        "message and TCP frame'): tcp frame = 0x01 || length (4) || header length (2) || "
        "CBOR [onward, return] || payload",
        "sent": _vector(SENT),
        "forwarded": _vector(SENT.stepped_in(VIA).stepped()),
        "largest": _vector(LARGEST),
    }


if __name__ == "__main__":
    print(json.dumps(vectors(), indent=2, sort_keys=True))
