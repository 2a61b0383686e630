"""The client side of the service protocol (docs/protocols.md, "Services"): `call`, and the
request multiplexer behind it (`Calls`, one per first hop, with request ids and deadlines).

Every first hop a node calls through (a channel end's `.enc` worker, or a local service) has one
`Calls`: one reply worker at an unguessable address (`/worker/calls-<16 hex digits>`), the
requests in flight by id, and a bound on them (at most `limits.MAX_CALLS_IN_FLIGHT`: more
callers wait). Each request carries that one reply address as its return route, so the
routed-message headers of every call through a channel are the same bytes (encoded and decoded
once, then cached) and no worker is registered per call; the service answers along that route
with the same id.

Why an answer cannot be forged from elsewhere: the reply address is reachable only from sources
that allow it, and a channel end allows the return addresses of what was sent through it (its
reply paths), so only the channel the requests went through (and local code) can reach its
`Calls`. An answer whose id is not in flight (unknown, answered already, timed out) is dropped
and counted. When the channel closes its `Calls` is closed: the callers still waiting get
`Unreachable` at once.

Deadlines: one timer per `Calls`, not one per call. It is armed at the earliest deadline of the
calls in flight; when it fires it fails the calls past their deadline and is armed again at the
earliest one left. A call whose deadline comes before the armed time re-arms it; with one
timeout for every call (the usual case) deadlines only grow, so no call touches the timer.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import weakref
from typing import Any, Final

from troth import limits
from troth.errors import Busy, DecodeError, RoutingError, Unreachable
from troth.node.services.protocol import (
    LOG_LINES_PER_MINUTE,
    MAX_REQUEST_ID,
    decode_response,
    encode_request,
    result_of,
)
from troth.routing import Address, Route, RoutedMessage, Router, Source, new_worker_address
from troth.transport.ratelog import RateLimitedLog

__all__ = ["BUSY_BACKOFF", "Calls", "call", "calls_through", "forget_calls"]

log = logging.getLogger("troth.node.services")
_DROPPED_ANSWERS: Final = RateLimitedLog(log, LOG_LINES_PER_MINUTE)
_PRUNE_AT = 64  # first hops remembered before the ones no longer served are forgotten
BUSY_BACKOFF: Final = (0.05, 1.0)
"""A call answered `busy` is sent again after between half and all of a ceiling that starts at
50 ms and doubles up to 1 s, while its timeout allows (docs/protocols.md, "Concurrent
requests"): a busy request did not run, so sending it again is safe."""


class Calls:
    """The requests a node has in flight through one first hop: one reply worker, request ids,
    at most `limit` in flight (more callers wait for a slot)."""

    def __init__(self, hop: Address, *, limit: int = limits.MAX_CALLS_IN_FLIGHT) -> None:
        self.hop = hop
        self.address = new_worker_address("calls")
        """The reply worker: the return route of every request through `hop`."""
        self.limit = limit
        self.dropped = 0
        """Answers dropped: malformed, or for an id not in flight."""
        self._pending: dict[int, asyncio.Future[list[Any]]] = {}
        self._deadlines: dict[int, tuple[float, float, Address]] = {}  # id: (loop time,
        # timeout, the service called)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # random, 65,536 at least: every request's id encodes in 5 bytes (one under 65,536 in
        # 3, once in 65,536 channels: the demo's frame sizes changed with it; lead)
        self._next_id = 0x10000 | int.from_bytes(os.urandom(4), "big")
        self._busy = 0  # slots taken (requests in flight or about to be sent)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed: str | None = None

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered (nor timed out)."""
        return len(self._pending)

    async def call(
        self, router: Router, route: Route, method: str, arguments: Any, timeout: float
    ) -> Any:
        """Send a request along `route` (starting with this hop) and wait for its answer. A
        `busy` answer (the request did not run) is sent again after a back-off, until the
        deadline; then `Busy` is raised. The deadline is `timeout` from this call: a wait for
        a slot counts against it (review 68x, calls 1)."""
        if self._closed is not None:
            raise Unreachable(self._closed)
        request_id = self._new_id()
        request = encode_request(request_id, method, arguments)
        loop = asyncio.get_running_loop()
        started = loop.time()  # (one clock read for the first send: review 68q, rtt)
        deadline = started + timeout  # from the call, not from a slot: a slot waited for
        # counts against the timeout (review 68x, calls 1)
        if self._busy < self.limit:
            self._busy += 1
        else:
            await self._wait_for_slot(timeout)
            started = loop.time()
        try:
            ceiling = BUSY_BACKOFF[0]
            while True:  # one request sent, its answer awaited (Unreachable past the
                # deadline); inline, not a coroutine of its own (review 68q, rtt)
                if self._closed is not None:  # closed while this caller waited (a slot, a
                    raise Unreachable(self._closed)  # back-off)
                answer: asyncio.Future[list[Any]] = loop.create_future()
                self._pending[request_id] = answer
                self._deadlines[request_id] = (deadline, timeout, route[-1])
                if self._timer is None or deadline < self._timer_at:
                    self._arm(loop, deadline)
                try:
                    await router.route(RoutedMessage(route, (self.address,), request))
                    response = await answer
                finally:
                    self._pending.pop(request_id, None)
                    self._deadlines.pop(request_id, None)
                try:
                    return result_of(response)
                except Busy:
                    pause = ceiling * (0.5 + random.random() / 2)
                    # sent again only with time left for twice the answer's round trip: one
                    # sent too late ended Unreachable at the deadline, not Busy
                    if loop.time() + pause + 2 * (loop.time() - started) >= deadline:
                        raise
                await asyncio.sleep(pause)
                ceiling = min(2 * ceiling, BUSY_BACKOFF[1])
                request_id = self._new_id()  # the same request under a new id
                request = encode_request(request_id, method, arguments)
                started = loop.time()
        finally:
            self._release()

    def _new_id(self) -> int:
        request_id = self._next_id
        self._next_id = (request_id + 1) & MAX_REQUEST_ID
        return request_id

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        """(Re-)arm the deadline timer at loop time `when`."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._expire, loop)
        self._timer_at = when

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """The deadline timer: fail the calls past their deadline (Unreachable), then arm the
        timer at the earliest deadline left."""
        self._timer = None
        now = loop.time()
        earliest: float | None = None
        for request_id, (deadline, timeout, where) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[request_id]
                answer = self._pending.get(request_id)
                if answer is not None and not answer.done():
                    why = f"no answer from {where} within {timeout} s"
                    answer.set_exception(Unreachable(why))
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None and self._closed is None:
            self._arm(loop, earliest)

    async def _wait_for_slot(self, timeout: float) -> None:
        """Wait until a finishing request hands its slot over (Unreachable after `timeout`)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        handed = False
        try:
            async with asyncio.timeout(timeout):
                await waiter
            handed = True
        except TimeoutError:
            raise Unreachable(f"{self.limit} requests in flight to {self.hop}") from None
        finally:
            if not handed:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed a slot it will not use: pass it on
                else:
                    waiter.cancel()  # skipped by _release

    def _release(self) -> None:
        """A request is done: its slot goes to the first caller waiting, else back."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy -= 1

    async def answer(self, message: RoutedMessage, source: Source | None) -> None:
        """The reply worker: hand an answer to the caller waiting for its id."""
        try:
            request_id, response = decode_response(message.payload)
        except DecodeError as exc:
            self.dropped += 1
            _DROPPED_ANSWERS.log(
                logging.INFO, "%s: dropped a malformed answer: %s", self.address, exc
            )
            return
        waiting = self._pending.pop(request_id, None)
        if waiting is None or waiting.done():
            self.dropped += 1
            _DROPPED_ANSWERS.log(
                logging.INFO,
                "%s: dropped an answer to request %d, not in flight",
                self.address,
                request_id,
            )
            return
        waiting.set_result(response)

    def close(self, why: str) -> None:
        """The hop is gone: every caller still waiting gets Unreachable(`why`), and so does
        every later call."""
        self._closed = why
        for waiting in self._pending.values():
            if not waiting.done():
                waiting.set_exception(Unreachable(why))
        self._pending.clear()
        self._deadlines.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


_CALLS: weakref.WeakKeyDictionary[Router, dict[Address, Calls]] = weakref.WeakKeyDictionary()


def calls_through(router: Router, hop: Address) -> Calls:
    """The `Calls` of first hop `hop` on `router` (made, and its reply worker registered, on
    first use)."""
    table = _CALLS.get(router)
    if table is None:
        table = _CALLS[router] = {}
    calls = table.get(hop)
    if calls is None:
        if len(table) >= _PRUNE_AT:
            for gone in [h for h, c in table.items() if not c.in_flight and not router.has(h)]:
                forget_calls(router, gone, f"{gone} is gone")
        calls = table[hop] = Calls(hop)
        router.register(calls.address, calls.answer)
    return calls


def in_flight_through(router: Router, hop: Address) -> int:
    """Requests through first hop `hop` on `router` not yet answered, those waiting to be
    sent again after a `busy` answer included (no `Calls` made)."""
    table = _CALLS.get(router)
    calls = table.get(hop) if table is not None else None
    return 0 if calls is None else calls._busy


def forget_calls(router: Router, hop: Address, why: str) -> None:
    """`hop` is gone (its channel closed): fail its callers still waiting with `why`, and stop
    its reply worker."""
    table = _CALLS.get(router)
    calls = table.pop(hop, None) if table is not None else None
    if calls is not None:
        calls.close(why)
        router.unregister(calls.address)


async def call(
    router: Router, route: Route, method: str, arguments: Any, *, timeout: float = 10.0
) -> Any:
    """Send a request along `route` (ending at a service) and wait for its response: its
    result, or `Denied` (with the reasons), `RoutingError` (no route; `Congested` when this
    node's first hop dropped it), `Busy` (answered busy until `timeout`: the node runs as many
    requests as it may, or the way on is congested), `RemoteError` (the service failed or
    refused it) or `Unreachable` (no answer within `timeout` seconds, or the channel closed)."""
    if not route:
        raise RoutingError("a call needs a route to a service")
    return await calls_through(router, route[0]).call(router, route, method, arguments, timeout)
