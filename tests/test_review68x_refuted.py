"""Review 68x, calls: attacks on 68q's round-trip changes that did not work.

- A caller cancelled mid-attempt (while its request is routed, or while it waits for the
  answer), 10,000 times over: no pending entry, deadline or slot is left behind.
- A `busy` answer's retry keeps the call's one deadline (read once): it is not renewed per
  attempt.
- `ChannelEnd.handle` reads the channel's state directly: a channel the node closes while its
  messages are handled still delivers none of the rest; one closed by the packet itself still
  delivers the messages authenticated before it.
- The route header cache is keyed on the header's own bytes, copied out of the frame: a frame
  buffer rewritten in place after a parse gets its new routes, not the cached ones; the decoded
  routes are immutable; the cache stays at 1,024 entries under thousands of distinct headers,
  and keeps none past `CACHED_HEADER` bytes.
- `Router.route` steps the message itself: the allow-set check lands on each hop in turn, on a
  route of `MAX_ROUTE_LENGTH` local hops, and the message a hop gets is what `stepped` gives.
- The encoder's cache is keyed on the (onward, return) pair: the same hops split differently
  between the routes are two headers, not one entry.
- A `Calls` closed (its channel gone) fails at once both the caller in flight and the one
  waiting for a slot (the inline loop still checks `closed` before each send).
- The struct-packed Noise nonce at its edges for both ciphers: 2^64-2 is the last usable
  counter (the spec's layout), 2^64-1 is refused with a typed `ChannelError`, and REKEY is
  ENCRYPT at 2^64-1 (the public vectors themselves run in test_noise_vectors.py).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal, cast

import pytest

from tests.support.channels import Allowing
from troth import limits
from troth.channel.events import Event, received
from troth.channel.noise import CipherState
from troth.channel.secure import SecureChannel
from troth.channel.state import ChannelState
from troth.crypto import Aead, AeadAlgorithm
from troth.encoding import cbor
from troth.errors import ChannelError, ChannelFailure, RoutingError, Unreachable
from troth.node.channel_ends import ChannelEnd
from troth.node.services.calls import Calls
from troth.node.services.protocol import BUSY, RESPONSE, VERSION, decode_request, error_response
from troth.routing import Address, RoutedMessage, Router, Source
from troth.routing.message import CACHED_HEADER, _decode_cached, stepped


def test_ten_thousand_calls_cancelled_mid_attempt_leave_nothing_behind() -> None:
    async def run() -> Calls:
        router = Router()
        hop = Address("worker", "hop")
        calls = Calls(hop, limit=64)
        router.register(calls.address, calls.answer)
        gate = asyncio.Event()
        routed = 0

        async def serve(message: RoutedMessage, source: Source | None) -> None:
            nonlocal routed
            routed += 1
            if routed % 2:  # half are cancelled while their request is routed
                await gate.wait()

        router.register(hop, serve)
        tasks = [
            asyncio.create_task(calls.call(router, (hop,), "m", None, 30.0)) for _ in range(10_000)
        ]
        await asyncio.sleep(0)
        assert calls.in_flight == 64  # the rest wait for a slot
        for task in tasks:  # in flight ones and slot waiters alike
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert all(task.cancelled() for task in tasks)
        return calls

    calls = asyncio.run(run())
    assert calls.in_flight == 0
    assert not calls._deadlines
    assert calls._busy == 0
    assert all(waiter.done() for waiter in calls._waiters)


def test_a_busy_retry_keeps_the_calls_one_deadline() -> None:
    timeout = 5.0

    async def run() -> tuple[Any, float, list[float]]:
        loop = asyncio.get_running_loop()
        router = Router()
        hop = Address("worker", "hop")
        calls = Calls(hop)
        router.register(calls.address, calls.answer)
        deadlines: list[float] = []

        async def serve(message: RoutedMessage, source: Source | None) -> None:
            request_id, _, _ = decode_request(message.payload)
            deadlines.append(calls._deadlines[request_id][0])
            if len(deadlines) < 3:
                answer = error_response(BUSY, "busy", request=request_id)
            else:
                answer = cbor.encode([RESPONSE, VERSION, request_id, True, "done"])
            await router.route(RoutedMessage(message.return_route, (), answer))

        router.register(hop, serve)
        start = loop.time()
        result = await calls.call(router, (hop,), "m", None, timeout)
        return result, start, deadlines

    result, start, deadlines = asyncio.run(run())
    assert result == "done"
    assert len(deadlines) == 3
    assert deadlines[0] == deadlines[1] == deadlines[2]  # not renewed after a back-off
    assert deadlines[0] < start + timeout + 1.0


class _Channel:
    """What `ChannelEnd.handle` reads of its channel: its state."""

    def __init__(self, state: ChannelState) -> None:
        self.state = state


def _end(channel: _Channel, delivered: list[bytes]) -> ChannelEnd:
    async def deliver(end: ChannelEnd, payload: bytes | memoryview) -> None:
        delivered.append(bytes(payload))
        channel.state = ChannelState.CLOSED  # the node closes it on the first message

    def on_event(end: ChannelEnd, event: Event) -> None:
        pass

    return ChannelEnd(
        cast(SecureChannel, channel),
        (Address("worker", "hop"),),
        router=Router(),
        clock=lambda: 0,
        deliver=deliver,
        on_event=on_event,
        max_reply_paths=8,
    )


def test_a_channel_closed_while_its_messages_are_handled_delivers_no_more() -> None:
    async def run() -> tuple[list[bytes], list[bytes]]:
        closed_by_node: list[bytes] = []
        end = _end(_Channel(ChannelState.OPEN), closed_by_node)
        await end.handle([received(b"a"), received(b"b"), received(b"c")])
        closed_by_packet: list[bytes] = []  # the packet's own CLOSE came after its messages
        end = _end(_Channel(ChannelState.CLOSED), closed_by_packet)
        await end.handle([received(b"a"), received(b"b")])
        return closed_by_node, closed_by_packet

    closed_by_node, closed_by_packet = asyncio.run(run())
    assert closed_by_node == [b"a"]
    assert closed_by_packet == [b"a", b"b"]


def _frame(name: str) -> bytes:
    return RoutedMessage((Address("worker", name),), (Address("worker", "back"),), b"p").encode()


def test_a_frame_rewritten_in_place_gets_its_new_routes() -> None:
    one, two = _frame("aaaa"), _frame("bbbb")
    assert len(one) == len(two)
    assert one != two
    buffer = bytearray(one)
    first = RoutedMessage.decode(memoryview(buffer))
    buffer[:] = two  # the same buffer, reused for the next frame
    second = RoutedMessage.decode(memoryview(buffer))
    assert first.onward == (Address("worker", "aaaa"),)
    assert second.onward == (Address("worker", "bbbb"),)
    assert isinstance(second.onward, tuple)
    assert isinstance(second.return_route, tuple)


def test_the_header_cache_stays_bounded_and_skips_large_headers() -> None:
    for i in range(3_000):
        RoutedMessage.decode(_frame(f"w{i}"))
    assert _decode_cached.cache_info().currsize <= 1024
    hops = tuple(Address("worker", f"w{i}-" + "x" * 60) for i in range(16))
    large = RoutedMessage(hops, (), b"").encode()
    assert int.from_bytes(large[:2], "big") > CACHED_HEADER
    misses = _decode_cached.cache_info().misses
    assert RoutedMessage.decode(large).onward == hops
    assert _decode_cached.cache_info().misses == misses  # decoded, not through the cache


def test_route_checks_each_hop_of_a_longest_route_in_turn() -> None:
    hops = tuple(Address("worker", f"h{i}") for i in range(limits.MAX_ROUTE_LENGTH))
    allowed = limits.MAX_ROUTE_LENGTH // 2
    source = Allowing(*hops[:allowed])
    seen: list[RoutedMessage] = []

    async def run() -> None:
        router = Router()

        async def forward(message: RoutedMessage, by: Source | None) -> None:
            seen.append(message)
            if message.onward:
                await router.route(message, by)

        for hop in hops:
            router.register(hop, forward)
        original = RoutedMessage(hops, (Address("worker", "back"),), b"payload")
        with pytest.raises(RoutingError, match=f"may not reach {hops[allowed]}"):
            await router.route(original, source)
        expected = original
        for message in seen:
            expected = stepped(expected)
            assert message.onward == expected.onward
            assert message.return_route == expected.return_route
            assert bytes(message.payload) == b"payload"

    asyncio.run(run())
    assert len(seen) == allowed  # every allowed hop reached, none past it


@pytest.mark.parametrize(
    ("algorithm", "order"),
    [(AeadAlgorithm.AES_256_GCM, "big"), (AeadAlgorithm.CHACHA20_POLY1305, "little")],
)
def test_the_nonce_edges_of_both_ciphers(
    algorithm: AeadAlgorithm, order: Literal["big", "little"]
) -> None:
    key = os.urandom(32)
    last = 2**64 - 2
    spec = Aead(algorithm, key)
    cipher = CipherState(algorithm, key)
    cipher.n = last  # the last counter a message may use
    sealed = cipher.encrypt_with_ad(b"ad", b"last")
    assert sealed == spec.encrypt(b"\x00" * 4 + last.to_bytes(8, order), b"last", b"ad")
    with pytest.raises(ChannelError) as exhausted:
        cipher.encrypt_with_ad(b"ad", b"one more")
    assert exhausted.value.reason is ChannelFailure.NONCE_EXHAUSTED
    with pytest.raises(ChannelError) as refused:
        cipher.decrypt_at(2**64 - 1, b"", sealed)
    assert refused.value.reason is ChannelFailure.DECRYPT_FAILED
    rekey = spec.encrypt(b"\x00" * 4 + (2**64 - 1).to_bytes(8, order), bytes(32), b"")[:32]
    probe = CipherState(algorithm, rekey).encrypt_with_ad(b"", b"x")
    assert CipherState(algorithm, key).rekeyed().encrypt_with_ad(b"", b"x") == probe


def test_routes_split_differently_get_their_own_headers() -> None:
    """The encoder's cache is keyed on (onward, return): the same hops split differently
    between the two routes are two entries, two headers, each decoding to its own routes."""
    a, b, c = (Address("worker", name) for name in ("a", "b", "c"))
    one = RoutedMessage((a, b), (c,), b"").header()
    two = RoutedMessage((a,), (b, c), b"").header()
    assert one != two
    assert RoutedMessage.decode(one).onward == (a, b)
    assert RoutedMessage.decode(two).onward == (a,)
    assert RoutedMessage.decode(two).return_route == (b, c)


def test_closing_calls_fails_the_caller_in_flight_and_the_one_waiting_for_a_slot() -> None:
    async def run() -> list[BaseException | Any]:
        router = Router()
        hop = Address("worker", "hop")
        calls = Calls(hop, limit=1)
        router.register(calls.address, calls.answer)

        async def swallow(message: RoutedMessage, source: Source | None) -> None:
            pass

        router.register(hop, swallow)
        tasks = [asyncio.create_task(calls.call(router, (hop,), "m", None, 30.0)) for _ in range(2)]
        await asyncio.sleep(0)
        assert calls.in_flight == 1  # the other waits for the slot
        calls.close("the channel closed")
        async with asyncio.timeout(5):  # at once, not after their 30 s
            return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(run())
    assert [type(outcome) for outcome in outcomes] == [Unreachable, Unreachable]
    assert all("the channel closed" in str(outcome) for outcome in outcomes)
