"""The echo service (`/service/echo`): answers a request with its arguments (`echo`) or only
their size (`discard`, for throughput measurements). Members only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from troth.node.access import MembersOnly
from troth.node.services.base import Method, RequestContext

__all__ = ["EchoService"]


class EchoService:
    """Echoes requests back to members."""

    name = "echo"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods: Mapping[str, Method] = {
            "echo": Method(self.echo, MembersOnly(), inline=True),
            "discard": Method(self.discard, MembersOnly(), inline=True),
        }

    async def echo(self, arguments: Any, context: RequestContext) -> Any:
        """The arguments, unchanged."""
        return arguments

    async def discard(self, arguments: Any, context: RequestContext) -> int:
        """Take a message, answer only its size."""
        return len(arguments) if isinstance(arguments, bytes | str) else 0

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        """Nothing to show."""
        return {}
