"""Which services a node runs: one factory per name node.json may list
(`troth.node.config.KNOWN_SERVICES`), each made from the running node's parts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from troth.identity import Identifier
from troth.node.services import NodeService
from troth.node.services.authority import AuthorityService
from troth.node.services.broker import BrokerService
from troth.node.services.echo import EchoService
from troth.node.services.policy import PolicyService
from troth.node.services.relay import RelayBook, RelayService
from troth.node.services.sink import SinkService
from troth.node.services.trace import TraceService
from troth.transport.connection import Connection, ConnectionTable

if TYPE_CHECKING:
    from troth.node.runtime import NodeRuntime

__all__ = ["compose"]


def compose(
    runtime: NodeRuntime, *, relays: RelayBook, kept_relays: dict[str, Identifier]
) -> list[NodeService]:
    """The services `runtime`'s node.json names, in its order (`authority` only when the node
    hosts one); `relays` and `kept_relays` are the relay names it keeps for their owners."""
    hosted = runtime.trust.hosted
    factories: dict[str, Callable[[], NodeService | None]] = {
        "echo": EchoService,
        "sink": SinkService,
        "relay": lambda: RelayService(
            runtime.router,
            runtime.channels,
            me=runtime.name,
            clock=runtime.clock.now,
            grace=runtime.relay_grace,
            book=relays,
            kept=kept_relays,
            worker=runtime.worker,
            trusted=lambda: len(runtime.trust.anchors),
            decide=runtime.access.decide,
            # on a node hosting an authority, only its troth.relay grant claims a name there
            # (review 38a, relay 1: a co-trusted authority's troth.relay=* took the hub's)
            authority=_hosted(runtime),
            feed_hooks=runtime.trust.feed_hooks,
            sources=_connections(runtime),
        ),
        "authority": lambda: (
            None
            if hosted is None
            else AuthorityService(
                hosted, runtime.trust, runtime.worker, find_channel=runtime.channels.find
            )
        ),
        "broker": lambda: BrokerService(
            runtime.node,
            runtime.trust,
            runtime.clock,
            policies=runtime.policies,
            audit=runtime.traces.audit_sink(),
        ),
        "trace": lambda: TraceService(runtime.traces, runtime.trust, runtime.worker),
        "policy": lambda: PolicyService(
            runtime.policies,
            runtime.worker,
            router=runtime.router,
            routes=lambda: runtime.trust.routes,
            hosted=lambda: (
                None if runtime.trust.hosted is None else runtime.trust.hosted.identifier
            ),
            channel_to=runtime.channel_to,
            find_channel=runtime.channels.find,
            clock=runtime.clock.now,
            standing=runtime.trust.standing,
        ),
    }
    made = (factories[name]() for name in runtime.node.config.services)
    return [service for service in made if service is not None]


def _hosted(runtime: NodeRuntime) -> Identifier | None:
    """The identifier of the authority the node hosts now, if any."""
    hosted = runtime.trust.hosted
    return None if hosted is None else hosted.identifier


def _connections(runtime: NodeRuntime) -> Callable[[], Iterable[Connection]] | None:
    """The node's connections now (what a refused relay is forgotten at), if its transport
    keeps a table of them."""
    table = runtime.tcp
    return table.connections if isinstance(table, ConnectionTable) else None
