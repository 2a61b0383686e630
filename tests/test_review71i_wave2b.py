"""Review 71i (the MCP held-weight changes of review 71a, area wave2b), findings.

Wave2b 1. A session holding no request took one of any weight whatever its server's pool
held (`HeldRequests.take`: the pool's room asked only of a session holding some), and that
weight was counted in the pool all the same. So one authority's members, each of their
sessions holding one request past the pool's bound, pushed the pool past twice
MAX_MCP_SERVER_HELD, where `Shares.room` refuses everyone: another authority's members,
holding nothing near their share, were refused theirs; and the pool was bounded by nothing
but the sessions' count (256 sessions, one request of up to ~4 MB weighed each, or ~50 MB
for a call over MAX_TOOL_ARGUMENT_VALUES while it is decided). A session holding none now
takes one request of any weight only when the pool has a byte of room for its authorities
(below its bound, or one of them holding less than its share).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from troth import limits

if TYPE_CHECKING:
    from troth.integrations.mcp.held import HeldRequests
    from troth.node.shares import Shares

_BOUND = 1 << 20
"""MAX_MCP_SERVER_HELD in these tests: 256 KiB each authority's share, two trusted."""


def _sessions(
    monkeypatch: pytest.MonkeyPatch, authority: bytes, count: int, shares: Shares
) -> list[HeldRequests]:
    """`count` sessions' held requests of members of `authority`, wired to `shares` as a
    published server wires them (`McpService._open`)."""
    from troth.integrations.mcp.held import HeldRequests
    from troth.node.services.mcp import _SharedHeld

    monkeypatch.setattr(limits, "MAX_MCP_SERVER_HELD", _BOUND)
    return [
        HeldRequests(limits.MAX_MCP_SESSION_HELD, _SharedHeld(shares, frozenset({authority})))
        for _ in range(count)
    ]


def test_wave2b_1_lone_requests_keep_another_authority_from_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """71i wave2b 1: authority A's sessions fill the server's pool to its bound, then each of
    A's other sessions, holding none, takes one request of 700 KiB: the pool went past twice
    its bound, and a member of authority B, holding one small request, was refused a second
    well within B's share. Now A's lone requests past its share are refused, the pool stays
    within twice its bound and one request, and B takes its share."""
    from troth.node.shares import Shares

    shares = Shares(lambda: 2)  # A and B trusted: a share is _BOUND // 4
    first, *others = _sessions(monkeypatch, b"A", 8, shares)
    (theirs,) = _sessions(monkeypatch, b"B", 1, shares)
    assert theirs.take(1, 10_000)
    assert first.take(1, _BOUND - 10_000)
    for session in others:
        session.take(1, 700 << 10)
    assert shares.places <= 2 * _BOUND + (700 << 10)
    for ident in range(2, 20):  # B takes up to its share
        assert theirs.take(ident, 10_000)
