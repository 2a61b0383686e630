"""Review 71s, relaywait 1: a sender's relayed channel to a member whose relay the hub refused
(here: the member rotated, and its old channel shows a superseded history) waited out the
call timeout (10 s) before it learned its route was gone.

The refusal cuts the member's connection off at the hub (`RelayService._cut_off`): every other
connection there forgets it as a reply path. A sender's open channel to the member names that
connection (`/worker/tcp-…`) as its next hop at the hub, so the hub dropped what the sender sent
into it as an address the sender's connection "may not reach", and the router sends no-route
notices only for addresses the source may reach (review 50f, relays 3). Now an address a
source was cut off from (it reached it before; the cut took it) is answered like one no worker
serves: the hub sends the no-route notice on its own channel with the sender, and the sender
closes the stale channel at once (`Unreachable`, "no route at the hub"). An address the source
never reached still gets no notice. Asserted by outcome and counters, not by the clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_attacks_review19 import GRACE
from tests.test_trace_node import step
from tests.test_trace_pins import rotated_collector, until
from troth.errors import RoutingError
from troth.routing import Address, AllowSet, AllowSetSource, Route, RoutedMessage, Router


class _Connection(AllowSetSource):
    name = "test connection"

    def __init__(self) -> None:
        self._use(AllowSet(max_reply_paths=8))

    def origin(self, return_route: Route) -> str:
        return "10.0.0.9"


def test_a_hop_a_source_was_cut_off_from_is_answered_with_a_no_route_notice() -> None:
    """71s relaywait 1 (the router): a `/worker/...` hop the source reached and was cut off
    from (`AllowSet.forget_each`, the relay's cut) goes to the no-route hook; one it never
    reached does not (review 50f, relays 3), nor one forgotten as a closed endpoint."""
    asyncio.run(_cut_off_hops())


async def _cut_off_hops() -> None:
    router, told = Router(), []
    router.unroutable = lambda message, source: told.append(message.onward[0])
    source = _Connection()
    cut, never, closed = (Address("worker", f"tcp-{n}") for n in ("cut", "never", "closed"))
    back = (Address("worker", "tcp-back"), Address("worker", "end.dec"))
    for address in (cut, closed):
        source.allow(address)
    source.allowed.forget_each({cut})
    source.forget(closed)
    for hop in (cut, never, closed):
        with pytest.raises(RoutingError, match="may not reach"):
            await router.route(RoutedMessage((hop,), back, b"x"), source)
    assert told == [cut]
    source.allow(cut)  # reached again: no longer cut off
    router.register(cut, _served)
    await router.route(RoutedMessage((cut,), back, b"x"), source)
    assert told == [cut]


async def _served(message: RoutedMessage, source: object) -> None:
    pass


def test_a_call_over_a_refused_relay_fails_at_once(tmp_path: Path) -> None:
    """71s relaywait 1 (the node): the collector rotates, the hub refuses its relay (the old
    channel's superseded history) and cuts its connection off; the agent's next batch fails
    by a no-route notice from the hub, not by the 10 s call timeout, and reaches the collector
    over a new channel."""

    async def test(net: MemNet) -> None:
        _, agent, client, _ = await rotated_collector(net)
        second = client.record(step(1))
        await until(lambda: client.failures > 0 or second.done, "the batch was tried")
        assert agent.channels.counters.closed_by_no_route == 1  # before: 0 (a 10 s timeout)
        await client.flush(20)
        assert second.result() == 1

    run_memnet(test, tmp_path / "home", relay_grace=GRACE)
