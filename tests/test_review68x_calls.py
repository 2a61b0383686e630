"""Review 68x, calls: a security review of 68q's round-trip changes (`Calls.call` inline).

calls 1: a call that waited for a slot (`MAX_CALLS_IN_FLIGHT` requests already in flight
    through its first hop) took its deadline from the moment it got the slot, not from the
    moment it was called: `call(..., timeout=t)` could wait up to `t` for a slot and then
    another `t` for the answer, nearly twice the timeout its docstring promises ("no answer
    within `timeout` seconds"). A peer that holds a hop's slots (answers nothing) doubled every
    other caller's wait. The deadline is now read once, when the call starts; the slot wait
    and the answer share it.
"""

from __future__ import annotations

import asyncio

import pytest

from troth.errors import Unreachable
from troth.node.services.calls import Calls
from troth.routing import Address, RoutedMessage, Router, Source

TIMEOUT = 0.2


def test_a_slot_waited_for_counts_against_the_call_timeout() -> None:
    """calls 1: with one slot held by a request nobody answers (timeout t/2), a second call
    (timeout t) is sent when the first times out; its deadline is its own start + t, not
    the moment it got the slot + t."""

    async def run() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        router = Router()
        hop = Address("worker", "hop")
        calls = Calls(hop, limit=1)
        router.register(calls.address, calls.answer)
        deadlines: list[float] = []

        async def swallow(message: RoutedMessage, source: Source | None) -> None:
            (deadline,) = (d for d, _, _ in calls._deadlines.values())
            deadlines.append(deadline)

        router.register(hop, swallow)
        first = asyncio.create_task(calls.call(router, (hop,), "m", None, TIMEOUT / 2))
        await asyncio.sleep(0)  # the first holds the one slot
        second_start = loop.time()
        with pytest.raises(Unreachable):
            await calls.call(router, (hop,), "m", None, TIMEOUT)
        with pytest.raises(Unreachable):
            await first
        assert calls.in_flight == 0
        assert calls._busy == 0
        assert len(deadlines) == 2  # the second was sent, after the first timed out
        return second_start, deadlines[1]

    second_start, second_deadline = asyncio.run(run())
    # (the bug put it half a timeout later: the first call's timeout, spent waiting)
    assert second_deadline < second_start + TIMEOUT + TIMEOUT / 4
