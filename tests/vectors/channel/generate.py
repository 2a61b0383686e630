"""Regenerate tests/vectors/channel/keepalive_vectors.json: the keepalive frames (PING and
PONG plaintexts, and each sealed as a transport frame under a fixed key and nonce, for both
ciphers), a BATCH frame of two messages (likewise), the route error a relay node answers
with (docs/formats.md, "Secure channel") and a no-route notice (docs/formats.md, "No-route
notice").

    python tests/vectors/channel/generate.py > tests/vectors/channel/keepalive_vectors.json

AES-GCM and ChaCha20-Poly1305 are deterministic for a fixed key and nonce, so the bytes are
fixed; tests/test_reconnect_channel.py rebuilds them byte for byte and reads the stored ones.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from troth.channel import RouteProblem, route_error
from troth.channel.noise import CipherState
from troth.channel.packets import TRANSPORT_FRAME
from troth.channel.payloads import Kind, pack
from troth.crypto import AeadAlgorithm
from troth.routing import Address, format_route
from troth.routing.notice import no_route

KEY = bytes(range(32))
NONCE = 7
DEAD = Address("worker", "tcp-h0123456789abcdef-0011223344556677")
"""The connection of a member gone from its hub, as the hub names an accepted one."""
SENDER = Address("worker", "chan-8899aabbccddeeff.dec")
"""The sender's channel end that sent into it."""
WAY = (Address("worker", "tcp-8899aabbccddeeff"), DEAD)
"""A no-route notice's way one hop back (review 50f, relays 2): the connection it came over
at the node it goes to, then the dead address."""
SENDER_ROUTE = (Address("worker", "tcp-h89abcdef-7766554433221100"), SENDER)
"""The sender route one hop back: the connection the packet came over there, then the end."""
BATCH_MESSAGES = (b"the first message of this batch", b"the second message, a little longer")
"""Each at least MIN_BATCH_MESSAGE (31) bytes (review 47e, batch 1)."""


def sealed(algorithm: AeadAlgorithm, plaintext: bytes) -> bytes:
    """0x02 || nonce (8, big-endian) || AEAD(KEY, NONCE, "", plaintext)."""
    out = bytearray(len(plaintext) + 16)
    CipherState(algorithm, KEY).encrypt_at_into(NONCE, b"", plaintext, memoryview(out))
    return bytes((TRANSPORT_FRAME,)) + struct.pack(">Q", NONCE) + bytes(out)


def vectors() -> dict[str, Any]:
    """Every vector, as hex."""
    frames: dict[str, Any] = {}
    for kind in (Kind.PING, Kind.PONG):
        plaintext = pack(kind, (), 0)
        frames[kind.name.lower()] = {
            "kind": int(kind),
            "plaintext": plaintext.hex(),
            **{
                f"frame_{algorithm.value}": sealed(algorithm, plaintext).hex()
                for algorithm in AeadAlgorithm
            },
        }
    # BATCH, written from docs/formats.md: kind 7 || body length (4) || items, each length (2)
    # || message
    body = b"".join(struct.pack(">H", len(m)) + m for m in BATCH_MESSAGES)
    batch = bytes((int(Kind.BATCH),)) + struct.pack(">I", len(body)) + body
    return {
        "batch": {
            "kind": int(Kind.BATCH),
            "messages": [m.hex() for m in BATCH_MESSAGES],
            "plaintext": batch.hex(),
            **{
                f"frame_{algorithm.value}": sealed(algorithm, batch).hex()
                for algorithm in AeadAlgorithm
            },
        },
        "_provenance": "troth, tests/vectors/channel/generate.py",
        "key": KEY.hex(),
        "nonce": NONCE,
        "keepalive": frames,
        "no_route_notice": {
            "dead": str(DEAD),
            "sender": str(SENDER),
            "bytes": no_route((DEAD,), (SENDER,)).hex(),
        },
        "no_route_notice_v2": {  # passed back one hop: the way and the sender two addresses
            "way": format_route(WAY),
            "sender": format_route(SENDER_ROUTE),
            "bytes": no_route(WAY, SENDER_ROUTE).hex(),
        },
        "route_error": {
            "code": int(RouteProblem.RELAY_NOT_FOUND),
            "bytes": route_error(RouteProblem.RELAY_NOT_FOUND).hex(),
        },
    }


if __name__ == "__main__":
    print(json.dumps(vectors(), indent=2, sort_keys=True))
