"""The client side of the service protocol (docs/protocols.md, "Services"): one reply worker
and request ids per first hop. An answer for an id not in flight (unknown, answered already,
timed out) is dropped; requests in flight are bounded; a hop that goes away fails its callers
at once. (That a channel's reply worker is reachable only through that channel is tested in
test_channel_manager.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from troth.encoding import cbor
from troth.errors import RemoteError, Unreachable
from troth.node.services import FAILED, Calls, error_response
from troth.node.services.base import calls_through, decode_request, forget_calls
from troth.routing import Address, RoutedMessage, Router, Source

SLOW = Address("service", "slow")


class Held:
    """A service worker that holds every request until the test answers it."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.requests: list[tuple[int, RoutedMessage]] = []
        router.register(SLOW, self.receive)

    async def receive(self, message: RoutedMessage, source: Source | None) -> None:
        self.requests.append((decode_request(message.payload)[0], message))

    async def answer(self, index: int, result: Any, *, request: int | None = None) -> None:
        """Answer the `index`th request held (with its own id, or `request`)."""
        own, message = self.requests[index]
        rid = own if request is None else request
        payload = cbor.encode(["troth.service.response", 2, rid, True, result])
        await self.router.route(RoutedMessage(message.return_route, (), payload))


def run(test: Callable[[Router, Held], Awaitable[None]]) -> None:
    async def main() -> None:
        router = Router()
        await asyncio.wait_for(test(router, Held(router)), 10)

    asyncio.run(main())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_an_answer_for_an_unknown_id_is_dropped_and_the_caller_gets_its_own() -> None:
    async def test(router: Router, held: Held) -> None:
        calls = calls_through(router, SLOW)
        waiting = asyncio.create_task(calls.call(router, (SLOW,), "m", "a", 5))
        await settle()
        ((own, _),) = held.requests
        for wrong in (own + 1, own - 1, 0, (1 << 64) - 1):
            await held.answer(0, "forged", request=wrong)
        assert calls.dropped == 4
        assert not waiting.done()
        await held.answer(0, "real")
        assert await waiting == "real"

    run(test)


def test_a_repeated_answer_to_a_finished_request_is_dropped() -> None:
    async def test(router: Router, held: Held) -> None:
        calls = calls_through(router, SLOW)
        first = asyncio.create_task(calls.call(router, (SLOW,), "m", 1, 5))
        await settle()
        await held.answer(0, "one")
        assert await first == "one"
        second = asyncio.create_task(calls.call(router, (SLOW,), "m", 2, 5))
        await settle()
        for _ in range(100):  # the first answer replayed
            await held.answer(0, "replayed")
        assert calls.dropped == 100
        assert not second.done()
        await held.answer(1, "two")
        assert await second == "two"

    run(test)


def test_an_answer_after_the_timeout_is_dropped() -> None:
    async def test(router: Router, held: Held) -> None:
        calls = calls_through(router, SLOW)
        with pytest.raises(Unreachable, match=r"no answer from /service/slow within"):
            await calls.call(router, (SLOW,), "m", None, 0.01)
        await held.answer(0, "late")
        assert calls.dropped == 1
        assert calls.in_flight == 0

    run(test)


def test_each_call_times_out_at_its_own_deadline_and_answered_ones_do_not() -> None:
    """One deadline timer per hop: a short timeout after a long one still fires on time, the
    long one fires later, and a call answered before its deadline is not failed."""

    async def test(router: Router, held: Held) -> None:
        calls = calls_through(router, SLOW)
        long = asyncio.ensure_future(calls.call(router, (SLOW,), "m", None, 0.5))
        answered = asyncio.ensure_future(calls.call(router, (SLOW,), "m", None, 0.05))
        await settle()
        await held.answer(1, "in time")
        assert await answered == "in time"
        with pytest.raises(Unreachable, match=r"within 0\.02 s"):
            await calls.call(router, (SLOW,), "m", None, 0.02)
        assert not long.done()  # the short deadline did not take the long call with it
        with pytest.raises(Unreachable, match=r"no answer from /service/slow within 0\.5 s"):
            await long
        assert calls.in_flight == 0

    run(test)


def test_calls_after_a_timed_out_one_still_have_a_deadline() -> None:
    """The timer is armed again after it fires: later calls time out too."""

    async def test(router: Router, held: Held) -> None:
        calls = calls_through(router, SLOW)
        for _ in range(3):
            with pytest.raises(Unreachable, match=r"no answer from /service/slow within"):
                await calls.call(router, (SLOW,), "m", None, 0.01)
        assert calls.in_flight == 0

    run(test)


def test_a_malformed_answer_is_dropped() -> None:
    async def test(router: Router, held: Held) -> None:
        calls = calls_through(router, SLOW)
        waiting = asyncio.create_task(calls.call(router, (SLOW,), "m", None, 5))
        await settle()
        ((own, message),) = held.requests
        for junk in (b"", b"\xff", cbor.encode(["troth.service.response", 2, -1, True, 0])):
            await router.route(RoutedMessage(message.return_route, (), junk))
        assert calls.dropped == 3
        error = error_response(FAILED, "refused", request=own)
        await router.route(RoutedMessage(message.return_route, (), error))
        with pytest.raises(RemoteError, match="refused"):
            await waiting

    run(test)


def test_requests_in_flight_are_bounded_and_waiting_callers_get_the_freed_slots() -> None:
    async def test(router: Router, held: Held) -> None:
        calls = Calls(SLOW, limit=2)
        router.register(calls.address, calls.answer)
        tasks = [asyncio.create_task(calls.call(router, (SLOW,), "m", i, 5)) for i in range(5)]
        await settle()
        assert len(held.requests) == 2  # the other three wait for a slot
        assert calls.in_flight == 2
        await held.answer(0, "a")
        await settle()
        assert len(held.requests) == 3
        for index in range(1, 5):
            await settle()
            await held.answer(index, index)
        assert await asyncio.gather(*tasks) == ["a", 1, 2, 3, 4]
        assert calls.in_flight == 0

    run(test)


def test_a_caller_waiting_for_a_slot_times_out() -> None:
    async def test(router: Router, held: Held) -> None:
        calls = Calls(SLOW, limit=1)
        router.register(calls.address, calls.answer)
        first = asyncio.create_task(calls.call(router, (SLOW,), "m", 1, 5))
        await settle()
        with pytest.raises(Unreachable, match="1 requests in flight"):
            await calls.call(router, (SLOW,), "m", 2, 0.01)
        await held.answer(0, "one")
        assert await first == "one"
        assert len(held.requests) == 1  # the caller that gave up sent nothing

    run(test)


def test_forgetting_a_hop_fails_its_callers_at_once() -> None:
    async def test(router: Router, held: Held) -> None:
        calls = calls_through(router, SLOW)
        waiting = asyncio.create_task(calls.call(router, (SLOW,), "m", None, 5))
        await settle()
        forget_calls(router, SLOW, "the channel closed")
        with pytest.raises(Unreachable, match="the channel closed"):
            await waiting
        with pytest.raises(Unreachable, match=r"the channel closed"):
            await calls.call(router, (SLOW,), "m", None, 5)
        assert not router.has(calls.address)
        assert calls_through(router, SLOW) is not calls  # a new hop gets a new reply worker

    run(test)
