"""A client's MCP message weighed as a published server's `send` weighs it (its value charge
counted in the same walk: review 71a, mcpheld 4)."""

from __future__ import annotations

from troth import limits
from troth.integrations.mcp.channel import decode_message
from troth.integrations.mcp.held import HeldRequests, Weighed


def weighed(message: bytes) -> Weighed:
    """The JSON-RPC `message` decoded and weighed by a session holding nothing."""
    return HeldRequests(limits.MAX_MCP_SESSION_HELD).weigh(decode_message(message), len(message))
