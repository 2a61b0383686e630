"""What a node service plug-in declares: `NodeService` (a name, its address
`/service/<name>`, methods, optionally a one-way handler, a maintenance hook and a status),
`Method` (a handler and the access rule it is decided by), and the `RequestContext` a handler
gets (the verified caller, where the answer goes, the decision).

`ServiceHost` (troth.node.services.host) serves them; `call` (troth.node.services.calls)
calls them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from troth.dataclass_init import quick_init
from troth.node.access import Caller, Decision, Rule
from troth.routing import Address, Route

__all__ = ["Handler", "Method", "NodeService", "RequestContext", "service_address"]


@quick_init  # one is made per request (benchmarks/README.md "Pass 51a")
@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a handler knows of a request: the verified caller, where the answer goes, the
    decision that let it through, and the time it was decided at."""

    caller: Caller
    return_route: Route
    decision: Decision
    now: int


Handler = Callable[[Any, RequestContext], Awaitable[Any]]
"""A method: `async (arguments, context) -> result` (a TrothError is answered as an error)."""


@dataclass(frozen=True, slots=True)
class Method:
    """A service method: its handler and the access rule the decision point applies.

    `inline`: the handler ends without waiting (nor uses what needs a task of its own:
    `asyncio.timeout`, anyio, a lock), so it runs where the request arrived, in the
    connection's routing (inside a transport's read callback: docs/protocols.md, "TCP
    transport"), and is answered there, in order. Any other handler of a peer's request runs
    in a task of its own, concurrently with the requests after it (`ServiceHost`)."""

    handler: Handler
    rule: Rule
    inline: bool = False


class NodeService(Protocol):
    """A node service plug-in."""

    @property
    def name(self) -> str:
        """The service's name; its address is `/service/<name>`."""
        ...

    @property
    def methods(self) -> Mapping[str, Method]:
        """Request/response methods by name."""
        ...

    @property
    def oneway(self) -> Method | None:
        """The handler of one-way messages (arguments: the raw payload), if the service takes
        them instead of requests."""
        ...

    async def maintain(self, now: int) -> None:
        """Periodic upkeep (the node's maintenance loop calls it)."""
        ...

    def status(self) -> dict[str, Any]:
        """What `node status` shows of this service."""
        ...


def service_address(name: str) -> Address:
    """The address of service `name`."""
    return Address("service", name)
