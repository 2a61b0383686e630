"""Review 28a, busy 1: a request whose handler ran, and met `busy` further on, was answered
`busy` too, so its caller ran it again (docs/protocols.md, "Services").

`busy` says that the request did not run and may be sent again (`call` does so after a
back-off while its timeout allows, `BUSY_BACKOFF`). The service host answered `busy` both when
it refused a request at once (its limits of requests running) and when the handler itself
raised `Busy`, which is what a handler that calls another service (`call`) raises when that
service stays busy, or, since review 27c (congested 2), when the way on to it is congested (a
peer there that does not read). That request ran: whatever its handler did before its own call
was done, and its caller then sent it again, and again, while its timeout allowed; each run
made its own round of calls with their back-offs, one congested hop multiplying the requests
of every layer above it.

The test: m serves `outer`, whose handler counts its runs and calls the hub's echo through a
forwarding worker whose way on is congested (the 27c setup); a calls `outer` with a timeout
long enough for several runs.

Was a strict xfail until a `Busy` raised by a handler (the request ran) was answered `failed`
naming it, not `busy`; only the host's own refusal before running a request is `busy`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_channel_manager import ECHO, HUB, Net, run
from tests.test_review27c_congested import ONWARD, congested_way_on
from troth.errors import Busy, RemoteError
from troth.node.access import AnyAuthenticated
from troth.node.channels import LISTENER, ChannelEnd
from troth.node.services import RequestContext, call
from troth.node.services.base import Method
from troth.routing import Address, Router, parse_route
from troth.transport.connection import Listener


class OuterService:
    """A service whose handler calls another service (through `to`, set by the test)."""

    name = "outer"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.runs = 0
        self.router: Router | None = None
        self.to: ChannelEnd | None = None
        self.methods = {"run": Method(self.run, AnyAuthenticated())}

    async def run(self, arguments: Any, context: RequestContext) -> Any:
        self.runs += 1  # what the handler does before its own call (a record, a lease...)
        assert self.router is not None
        assert self.to is not None
        return await call(self.router, (self.to.enc, ONWARD, ECHO), "echo", arguments, timeout=0.5)

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        """Nothing to show."""
        return {}


def test_a_request_whose_handler_met_busy_further_on_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def test(net: Net) -> None:
        await congested_way_on(net, monkeypatch, [])

        outer = OuterService()
        m = net.peer("10.0.0.5", services=(outer,))
        await m.transport.listen("m", 4002, Listener(addresses=frozenset({LISTENER})))
        outer.router, outer.to = m.router, await m.manager.open(parse_route(HUB))
        a = net.peer("10.0.0.2")
        end = await a.manager.open(parse_route("/tcp/m:4002"))
        with pytest.raises(RemoteError) as failed:
            await call(a.router, (end.enc, Address("service", "outer")), "run", "x", timeout=3)
        assert outer.runs == 1, f"ran {outer.runs} times"
        assert not isinstance(failed.value, Busy)
        assert str(failed.value).startswith("outer: the request ran and met busy: ")
        assert "the way on is congested" in str(failed.value)  # not where (review 30, busy 1)

    run(test)
