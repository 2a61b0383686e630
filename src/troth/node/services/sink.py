"""The sink service (`/service/sink`): one-way messages from members are counted and dropped
(throughput measurements). Messages the decision point refuses are dropped and counted by the
service host."""

from __future__ import annotations

from typing import Any

from troth.node.access import MembersOnly
from troth.node.services.base import Method, RequestContext

__all__ = ["SinkService"]


class SinkService:
    """Counts and drops one-way messages from members."""

    name = "sink"

    def __init__(self) -> None:
        self.methods: dict[str, Method] = {}
        self.oneway: Method | None = Method(self.sink, MembersOnly(), inline=True)
        self.messages = 0
        self.bytes = 0

    async def sink(self, payload: Any, context: RequestContext) -> None:
        """Count one message."""
        self.messages += 1
        self.bytes += len(payload)

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        """Messages and bytes taken."""
        return {"messages": self.messages, "bytes": self.bytes}
