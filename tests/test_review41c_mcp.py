"""Review 41c, mcp: attacks on review 40c's record of a published MCP server's grantors
(`mcp_grantors`, `troth.node.services.mcp.publish_upstream`; docs/policy.md, "MCP over secure
channels").
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from mcp import StdioServerParameters

from tests.support.mcp_orders import orders_server
from tests.support.nodes import MemNet, run_memnet
from tests.test_review38a_mcp import refund_as
from tests.test_review40c_mcp import GLOBEX_X, REFUNDED, _acme_tools, _restarted
from troth import limits
from troth.errors import ConflictError
from troth.node.services.mcp import publish_upstream, recorded_grantors
from troth.storage.sqlite_mcp import SqliteMcpGrantors

DEAD = StdioServerParameters(command=sys.executable, args=["-c", ""])  # exits at once


def test_a_publication_that_fails_to_start_leaves_the_record(tmp_path: Path) -> None:
    """Review 41c, mcp 1. `orders`, published on acme's member naming none, records acme.
    After a restart the operator tries `troth mcp serve orders --grantable-by globex` with a
    wrong command: the upstream exits, the publication is refused and serves nothing. It had
    recorded globex already (the record is written before the upstream starts): the operator
    publishes `orders` again, naming none as always, and globex grants it: acme's writer is
    shown no tool and denied, by a command that failed. A new name failing so took one of
    MAX_MCP_GRANTOR_RECORDS slots for good too.

    Was a strict xfail until `publish_upstream` recorded the grantors once the upstream had
    started (the bound still checked before it starts).
    """

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await _acme_tools(net, tools)
        writer = await net.member("writer", **{"orders.access": "write"})
        acme = net.authority.identifier
        assert (await publish_upstream(tools, "orders", orders_server()))["grantable_by"] == [
            str(acme)
        ]
        tools = await _restarted(net, tools)
        with pytest.raises(OSError, match="Connection closed"):
            await publish_upstream(tools, "orders", DEAD, grantable_by=(GLOBEX_X,))
        with pytest.raises(OSError, match="Connection closed"):
            await publish_upstream(tools, "typo", DEAD, grantable_by=(GLOBEX_X,))
        assert recorded_grantors(tools.node, "typo") is None
        assert recorded_grantors(tools.node, "orders") == (acme,)
        again = await publish_upstream(tools, "orders", orders_server())
        assert again["grantable_by"] == [str(acme)]
        assert await refund_as(writer, "writer") == REFUNDED

    run_memnet(test, tmp_path)


def test_two_new_names_racing_for_the_last_slot_publish_one(tmp_path: Path) -> None:
    """Review 41c, mcp 1, its bound: the record is written once the upstream has started, so
    two new names published at once with one slot left both pass the check before their
    upstreams start; the one whose record comes second is refused then (ConflictError naming
    `troth mcp forget`), its upstream closed, not served, nothing recorded for it."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await _acme_tools(net, tools)
        store = SqliteMcpGrantors(tools.node.db)
        acme = str(net.authority.identifier)
        with tools.node.db.transaction():
            for n in range(limits.MAX_MCP_GRANTOR_RECORDS - 1):
                store.record(f"s{n}", [acme], now=1, limit=limits.MAX_MCP_GRANTOR_RECORDS)
        outcomes = await asyncio.gather(
            publish_upstream(tools, "orders", orders_server()),
            publish_upstream(tools, "refunds", orders_server()),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(refused) == 1
        assert isinstance(refused[0], ConflictError), refused[0]
        assert "troth mcp forget" in str(refused[0])
        served = {"orders", "refunds"} - {n for n in ("orders", "refunds") if n in str(refused[0])}
        (name,) = served
        assert f"mcp.{name}" in tools.host.services
        assert len(store.names()) == limits.MAX_MCP_GRANTOR_RECORDS
        loser = ({"orders", "refunds"} - served).pop()
        assert f"mcp.{loser}" not in tools.host.services
        assert recorded_grantors(tools.node, loser) is None

    run_memnet(test, tmp_path)
