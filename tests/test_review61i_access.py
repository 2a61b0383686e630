"""Review 61i: the node's access decision point, service dispatch and the control socket.

Access 1: a service handler that raised `asyncio.CancelledError` of its own (its request was
not cancelled: it awaited a future something else cancelled, a shielded piece of work that was
stopped) was never answered. `ServiceHost._respond` answered `Exception`s only, and a
`CancelledError` is not one: an inline method's went up the connection's routing and stopped
it (the memory transport's consumer ended; over TCP the read callback's error closes the
connection), so every channel over that connection went unanswered, a fresh one could not
even be opened; a method run in a task of its own ended cancelled, and its caller waited out
its timeout (`Unreachable`), told nothing. Now it is the handler's failure, answered as any
other bug ("internal error", logged), unless its own request was being cancelled (the channel
closed, the node stops: no answer has a way back).

Access 2 (fixed by the lead in troth._api.network): `troth.Service(name)` refuses
the names of the built-in services (`KNOWN_SERVICES`) but not the two other `/service/`
addresses every node serves: `channels` (the channel listener, `LISTENER`) and `no-route` (the
no-route notices, `NOTICE_SERVICE`). A `Service("channels")` took `/service/channels` before
the runtime started, and `Node.serve` failed with "RoutingError /service/channels is taken"
from the channel manager's start, naming nothing the caller wrote (its rules would also have
been overwritten by the channel admission rule, and the name is infrastructure, under no
bundle); a `Service("no-route")` was served, but every request to it is taken for a no-route
notice before routing (`ChannelManager._deliver`) and dropped: its callers wait out their
timeouts. The fix: refuse both names in `Service.__init__` as the built-in ones are.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import troth
from tests.test_channel_manager import Net, echo, run
from tests.test_service_concurrency import _channel, _hub
from troth.errors import ArgumentError, RemoteError
from troth.node.access import AnyAuthenticated
from troth.node.services import Method, RequestContext, call
from troth.routing import Address, RoutedMessage

STRAY = Address("service", "stray")


class Stray:
    """Methods whose handler raises a CancelledError no one asked for (its request is not
    cancelled): inline, and in a task of its own."""

    name = "stray"
    oneway: Method | None = None

    def __init__(self) -> None:
        rule = AnyAuthenticated()
        self.methods = {
            "inline": Method(self.cancelled, rule, inline=True),
            "task": Method(self.cancelled, rule),
        }

    async def cancelled(self, arguments: Any, context: RequestContext) -> Any:
        raise asyncio.CancelledError  # as a future another task cancelled raises it

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize("method", ["inline", "task"])
def test_a_handlers_own_cancelled_error_is_answered_and_its_connection_stays(
    method: str,
) -> None:
    async def test(net: Net) -> None:
        await _hub(net, Stray())
        node = net.peer("10.0.0.2")
        end, beside = await _channel(net, node), await _channel(net, node)
        with pytest.raises(RemoteError, match="internal error"):
            await call(node.router, (end.enc, STRAY), method, "x", timeout=0.5)
        # the channel, and the other channel over the same connection, still served
        for channel in (end, beside):
            assert await asyncio.wait_for(echo(node, channel, "still"), 0.5) == "still"

    run(test)


class StrayOneway(Stray):
    """A one-way handler raising it."""

    name = "stray-oneway"

    def __init__(self) -> None:
        self.methods = {}
        self.oneway = Method(self.cancelled, AnyAuthenticated(), inline=True)


def test_a_one_way_handlers_own_cancelled_error_leaves_its_connection_served() -> None:
    async def test(net: Net) -> None:
        await _hub(net, StrayOneway())
        node = net.peer("10.0.0.2")
        end, beside = await _channel(net, node), await _channel(net, node)
        to = (end.enc, Address("service", StrayOneway.name))
        await node.router.route(RoutedMessage(to, (), b"one way"))
        for channel in (end, beside):
            assert await asyncio.wait_for(echo(node, channel, "still"), 0.5) == "still"

    run(test)


@pytest.mark.parametrize("name", ["channels", "no-route"])
def test_a_service_of_your_own_cannot_take_an_address_every_node_serves(name: str) -> None:
    with pytest.raises(ArgumentError, match="name"):
        troth.Service(name)
