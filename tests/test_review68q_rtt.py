"""Review 68q, service.rtt: fewer Python calls per round trip, every check kept.

No finding: this pass only removes calls on the request/response path (benchmarks/README.md,
"Pass 68q"). What each removal must keep, tested here:

- the Noise transport nonce is packed by a `struct` (not a Python function): the same 12
  bytes as §12.3/§12.4 lay out, at the edges of the counter too;
- a routed message's header is encoded and parsed without the `_encode_header` /
  `_decode_header` hop: the same bytes, the route and header limits still refused, a header
  too large for the decoder's cache still decoded (and bounded by MAX_ROUTE_HEADER_BYTES);
- `Router.route` builds the stepped message itself: a local worker gets the message past its
  hop, return route and payload unchanged, and a denied source still reaches nothing;
- `Calls.call` reads the loop's clock once per first send: a `busy` answer is still sent
  again under a new id until its answer.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

import pytest

from tests.support.channels import Allowing
from troth import limits
from troth.channel.noise import CipherState
from troth.crypto import Aead, AeadAlgorithm
from troth.encoding import cbor
from troth.errors import DecodeError, RoutingError
from troth.node.services.calls import Calls
from troth.node.services.protocol import BUSY, RESPONSE, VERSION, decode_request, error_response
from troth.routing import Address, RoutedMessage, Router, Source, parse_route


@pytest.mark.parametrize(
    ("algorithm", "order"),
    [(AeadAlgorithm.AES_256_GCM, "big"), (AeadAlgorithm.CHACHA20_POLY1305, "little")],
)
def test_transport_nonces_keep_the_spec_layout(
    algorithm: AeadAlgorithm, order: Literal["big", "little"]
) -> None:
    key = os.urandom(32)
    cipher, plain = CipherState(algorithm, key), b"a transport frame"
    for n in (0, 1, 255, 256, 2**32 - 1, 2**32, 2**63, 2**64 - 2):
        nonce = b"\x00" * 4 + n.to_bytes(8, order)
        expected = Aead(algorithm, key).encrypt(nonce, plain, b"")
        out = bytearray(len(plain) + 16)
        cipher.encrypt_at_into(n, b"", plain, memoryview(out))
        assert bytes(out) == expected
        assert cipher.decrypt_at(n, b"", expected) == plain
    with pytest.raises(Exception, match="reserved"):  # 2^64-1 is never a frame's nonce
        cipher.encrypt_at_into(2**64 - 1, b"", plain, memoryview(bytearray(len(plain) + 16)))


def _hops(n: int, size: int = 8) -> tuple[Address, ...]:
    return tuple(Address("worker", f"w{i}-" + "x" * size) for i in range(n))


def test_route_headers_keep_their_bytes_and_limits() -> None:
    payload = b"\x01payload"
    for onward, back in ((3, 3), (4, 3), (9, 7), (limits.MAX_ROUTE_LENGTH, 1)):
        message = RoutedMessage(_hops(onward), _hops(back), payload)
        data = message.encode()
        assert data == message.header() + payload
        decoded = RoutedMessage.decode(data)
        assert (decoded.onward, decoded.return_route) == (message.onward, message.return_route)
        assert bytes(decoded.payload) == payload
    with pytest.raises(RoutingError, match="longer than"):  # the route limit, encoding
        RoutedMessage(_hops(limits.MAX_ROUTE_LENGTH + 1), (), payload).header()
    with pytest.raises(RoutingError, match="route header of"):  # the header limit
        RoutedMessage(_hops(16, 250), _hops(16, 250), payload).header()


def test_a_header_past_the_cache_is_decoded_and_bounded() -> None:
    big = RoutedMessage(_hops(8, 200), _hops(8, 200), b"x")  # ~3.3 KB: not cached
    data = big.encode()
    assert int.from_bytes(data[:2], "big") > 1024
    assert RoutedMessage.decode(data).onward == big.onward
    arrived = RoutedMessage.arrived(data, Address("worker", "tcp-1"))
    assert arrived.return_route == (Address("worker", "tcp-1"), *big.return_route)
    # a header declaring more than MAX_ROUTE_HEADER_BYTES (the peer's bytes) is refused
    header = b"\x82" + b"\x80" + b"\x59" + (9000).to_bytes(2, "big") + b"y" * 9000
    forged = len(header).to_bytes(2, "big") + header
    with pytest.raises(DecodeError):
        RoutedMessage.decode(forged)


def test_route_hands_a_local_worker_the_message_past_its_hop() -> None:
    got: list[tuple[RoutedMessage, Source | None]] = []

    async def worker(message: RoutedMessage, source: Source | None) -> None:
        got.append((message, source))

    async def run() -> None:
        router = Router()
        here, other = Address("worker", "here"), Address("worker", "other")
        router.register(here, worker)
        router.register(other, worker)
        payload = memoryview(b"payload")
        message = RoutedMessage((here, *parse_route("/service/echo")), (other,), payload)
        source = Allowing(here)
        await router.route(message, source)
        ((stepped, seen),) = got
        assert stepped.onward == parse_route("/service/echo")
        assert stepped.return_route == (other,)
        assert stepped.payload is payload
        assert seen is source
        with pytest.raises(RoutingError, match="may not reach"):  # still default deny
            await router.route(RoutedMessage((other,), (), b""), source)
        assert len(got) == 1

    asyncio.run(run())


def test_a_busy_answer_is_sent_again_under_a_new_id() -> None:
    async def run() -> tuple[Any, list[int]]:
        router = Router()
        hop = Address("worker", "hop")
        calls = Calls(hop)
        router.register(calls.address, calls.answer)
        ids: list[int] = []

        async def serve(message: RoutedMessage, source: Source | None) -> None:
            request_id, _, _ = decode_request(message.payload)
            ids.append(request_id)
            if len(ids) == 1:
                answer = error_response(BUSY, "busy", request=request_id)
            else:
                answer = cbor.encode([RESPONSE, VERSION, request_id, True, "done"])
            await router.route(RoutedMessage(message.return_route, (), answer))

        router.register(hop, serve)
        return await calls.call(router, (hop,), "m", None, 5.0), ids

    result, ids = asyncio.run(run())
    assert result == "done"
    assert len(ids) == 2
    assert ids[0] != ids[1]
