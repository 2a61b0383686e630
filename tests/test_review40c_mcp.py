"""Review 40c, mcp: a published MCP server's grantors recorded by its name in the node's store
(`mcp_grantors`; closes review 39b, mcp 2; docs/policy.md, "MCP over secure channels";
docs/formats.md, "mcp_grantors").

The record is written when the grantors are first fixed (the node's own authority at
publication, or the first it has later: `_first_own`) or named (`--grantable-by`, which
replaces it); the same name published again naming none takes it, after a restart too; `troth
mcp forget NAME` forgets it. Pinned here: a server fixed after its publication keeps its
authority across a restart; an explicit grantor replaces the record; a forgotten record
leaves the next publication to the node's own authority then (none, trusting two: denied); a
database from before the table opens and migrates; a crash inside the record's write leaves
the old record; the table is bounded (MAX_MCP_GRANTOR_RECORDS names; past it a new name is
refused, a recorded one still published).

Attack notes (review 40c):
- a name reused for a different upstream command takes the name's record: the record is the
  operator's word on the name, as a secret's `grantable_by` is on the secret's name; an
  operator who reuses a name for another server names its grantors or forgets the record
  first (docs/policy.md says so). Not a finding: only the node's operator publishes.
- many names: bounded by MAX_MCP_GRANTOR_RECORDS (pinned below). Finding mcp 2 (fixed): a
  name refused as a server name was recorded before its refusal, and a publication's
  grantable_by was unbounded, so rows were not bounded in size; now the name and at most
  MAX_MCP_GRANTORS grantors are checked first.
- finding mcp 1 (fixed): a grantor fixed at a decision (`_first_own`) was written on the
  deciding thread, the event loop when no trace log records decisions: another process's
  write lock stalled every channel of the node for up to TROTH_BUSY_TIMEOUT and the record
  was lost at the timeout; now it is queued on the node's storage thread.
- seen, not this change's: while another process holds node.db's write lock, a new channel's
  handshake and a first decision signed into the trace log wait for it (their own writes).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mcp import Client

from tests.support.mcp_orders import names, orders_server, text
from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from tests.test_mcp_channels import support_bundle
from tests.test_review37a_mcp import enroll_with_globex
from tests.test_review38a_mcp import refund_as
from troth import limits
from troth.cli.main import cli
from troth.errors import ConflictError, PolicyError
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.identity import Identifier
from troth.integrations.mcp.connect import connect
from troth.node import open_node
from troth.node.node import init_node
from troth.node.runtime import NodeRuntime
from troth.node.services.mcp import forget_grantors, publish_upstream, recorded_grantors
from troth.storage.sqlite_mcp import SqliteMcpGrantors

REFUNDED = (["lookup_order", "refund"], "refunded 20 on o1")
ACME_X = Identifier(bytes(range(32)))
GLOBEX_X = Identifier(bytes(range(1, 33)))


async def _restarted(net: MemNet, runtime: NodeRuntime) -> NodeRuntime:
    """`runtime`'s node stopped and started again (a new process would do the same)."""
    await runtime.stop()
    node = open_node(runtime.name, home=net.home)
    net.opened.append(node)
    again = NodeRuntime(node, clock=net.clock, transport=net.transport("tools"))
    net.runtimes.append(again)
    await again.start(("tools", 4000))
    return again


async def _acme_tools(net: MemNet, tools: NodeRuntime) -> None:
    """`tools` enrolled with acme, acme's support bundle accepted."""
    await tools.enroll(net.ticket(), "tools")
    now = net.clock.now()
    assert net.hub is not None
    signer = net.hub.node.identities.signer("hub", now=now)
    tools.policies.accept(support_bundle(signer, net.authority.identifier, now), now=now)


def test_a_grantor_fixed_after_publication_is_kept_across_a_restart(tmp_path: Path) -> None:
    """The tools node publishes `orders` trusting no authority (no grantor, nothing recorded),
    enrolls with acme: acme's writer refunds (acme fixed then, and recorded). It enrolls with
    globex, restarts, and publishes `orders` again naming none: acme is read back and acme's
    writer still refunds."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        published = await publish_upstream(tools, "orders", orders_server())
        assert published["grantable_by"] == []
        assert recorded_grantors(tools.node, "orders") is None
        await _acme_tools(net, tools)
        writer = await net.member("writer", **{"orders.access": "write"})
        assert await refund_as(writer, "writer") == REFUNDED
        assert recorded_grantors(tools.node, "orders") == (net.authority.identifier,)
        _globex_node, globex, _ticket = await globex_over_tcp(net)
        await enroll_with_globex(net, tools, globex)

        tools = await _restarted(net, tools)
        again = await publish_upstream(tools, "orders", orders_server())
        assert again["grantable_by"] == [str(net.authority.identifier)]
        assert await refund_as(writer, "writer") == REFUNDED

    run_memnet(test, tmp_path)


def test_an_explicit_grantor_replaces_the_record_and_forget_clears_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`orders` published on acme's member naming none records acme. After a restart it is
    published naming globex: the record is globex's, and after another restart, published
    naming none, globex grants it and acme's writer is shown nothing and denied. After `troth
    mcp forget orders` and a restart, the node (trusting acme and globex now) has no own
    authority: published naming none, nobody is granted (deny when in doubt)."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await _acme_tools(net, tools)
        writer = await net.member("writer", **{"orders.access": "write"})
        acme = str(net.authority.identifier)
        assert (await publish_upstream(tools, "orders", orders_server()))["grantable_by"] == [acme]
        assert await refund_as(writer, "writer") == REFUNDED
        _globex_node, globex, _ticket = await globex_over_tcp(net)

        tools = await _restarted(net, tools)
        named = await publish_upstream(
            tools, "orders", orders_server(), grantable_by=(globex.identifier,)
        )
        assert named["grantable_by"] == [str(globex.identifier)]
        tools = await _restarted(net, tools)
        again = await publish_upstream(tools, "orders", orders_server())
        assert again["grantable_by"] == [str(globex.identifier)]
        shown, answer = await refund_as(writer, "writer")
        assert shown == []
        assert answer.endswith("denied: no policy bundle")

        await enroll_with_globex(net, tools, globex)
        monkeypatch.setenv("TROTH_HOME", str(net.home))
        forgotten = CliRunner().invoke(cli, ["mcp", "forget", "orders", "--node", "tools"])
        assert forgotten.exit_code == 0, forgotten.output
        assert "its recorded grantors forgotten" in forgotten.output
        assert recorded_grantors(tools.node, "orders") is None
        twice = CliRunner().invoke(cli, ["mcp", "forget", "orders", "--node", "tools"])
        assert "no grantors were recorded" in twice.output
        tools = await _restarted(net, tools)
        fresh = await publish_upstream(tools, "orders", orders_server())
        assert fresh["grantable_by"] == []
        shown, answer = await refund_as(writer, "writer")
        assert shown == []
        assert answer.endswith("denied: no policy bundle")

    run_memnet(test, tmp_path)


def test_a_database_from_before_the_table_opens_and_migrates(tmp_path: Path) -> None:
    """A node.db as the schema before `mcp_grantors` left it (the table absent, user_version
    lower; the migration after it undone too) opens: the migration adds the table, the version
    is current again, nothing is recorded, and a record written then is read back after
    reopening."""
    init_node("tools", home=tmp_path)
    with open_node("tools", home=tmp_path) as node:
        path = node.path / "node.db"
    with sqlite3.connect(path) as conn:
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute("DROP TABLE mcp_grantors")
        conn.execute("DROP TABLE retired_keys")  # (review 47f's, the migration after it)
        conn.execute("DROP TABLE feed_syncs_due")  # (and review 48m's)
        conn.execute("DROP TABLE identity_forks")  # (and review 49c's)
        conn.execute("DROP TABLE rollback_counters")  # (and review 51d's)
        conn.execute("DROP TABLE voucher_sources")  # (and review 54x's)
        conn.execute(f"PRAGMA user_version = {current - 10}")  # (and 53h's, 66i's, 69f's, 71e's)
    with open_node("tools", home=tmp_path) as node:
        assert recorded_grantors(node, "orders") is None
        SqliteMcpGrantors(node.db).record("orders", [str(ACME_X)], now=1, limit=8)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == current
    with open_node("tools", home=tmp_path) as node:
        assert recorded_grantors(node, "orders") == (ACME_X,)
        assert forget_grantors(node, "orders")
        assert recorded_grantors(node, "orders") is None


_WRITER = """
import sys
from pathlib import Path
from troth.node import open_node
from troth.storage.sqlite_mcp import SqliteMcpGrantors
node = open_node("tools", home=Path(sys.argv[1]))
SqliteMcpGrantors(node.db).record("orders", [sys.argv[2]], now=2, limit=8)
node.close()
"""


def _write_in_a_process(home: Path, grantor: Identifier, crash: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    if crash is not None:
        env[CRASH_ENV] = crash
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(home), str(grantor)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return done.returncode


def test_a_crash_inside_the_records_write_leaves_the_old_record(tmp_path: Path) -> None:
    """A process replacing `orders`'s record (acme) by globex, killed before its commit
    (`node.mcp-grantors.before-commit`), leaves acme recorded; the same write not killed
    replaces it."""
    init_node("tools", home=tmp_path)
    with open_node("tools", home=tmp_path) as node:
        SqliteMcpGrantors(node.db).record("orders", [str(ACME_X)], now=1, limit=8)
    crashed = _write_in_a_process(tmp_path, GLOBEX_X, "node.mcp-grantors.before-commit")
    assert crashed == CRASH_EXIT_CODE
    with open_node("tools", home=tmp_path) as node:
        assert recorded_grantors(node, "orders") == (ACME_X,)
    assert _write_in_a_process(tmp_path, GLOBEX_X, None) == 0
    with open_node("tools", home=tmp_path) as node:
        assert recorded_grantors(node, "orders") == (GLOBEX_X,)


def test_the_record_is_bounded(tmp_path: Path) -> None:
    """With MAX_MCP_GRANTOR_RECORDS - 1 names recorded, `orders` is published (its grantor
    recorded: the bound reached); `refunds`, a new name, is refused with a reason naming `troth
    mcp forget`, naming an authority too; a recorded name is still published, and after one
    name is forgotten `refunds` is."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await _acme_tools(net, tools)
        store = SqliteMcpGrantors(tools.node.db)
        acme = str(net.authority.identifier)
        with tools.node.db.transaction():
            for n in range(limits.MAX_MCP_GRANTOR_RECORDS - 1):
                store.record(f"s{n}", [acme], now=1, limit=limits.MAX_MCP_GRANTOR_RECORDS)
        assert (await publish_upstream(tools, "orders", orders_server()))["grantable_by"] == [acme]
        for grantable_by in ((), (net.authority.identifier,)):
            with pytest.raises(ConflictError) as refused:
                await publish_upstream(tools, "refunds", orders_server(), grantable_by=grantable_by)
            assert "troth mcp forget" in str(refused.value)
            assert "mcp.refunds" not in tools.host.services
        assert (await publish_upstream(tools, "s7", orders_server()))["grantable_by"] == [acme]
        assert forget_grantors(tools.node, "s0")
        assert (await publish_upstream(tools, "refunds", orders_server()))["grantable_by"] == [acme]

    run_memnet(test, tmp_path)


def test_a_grantor_fixed_while_the_store_is_busy_is_recorded_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mcp 1 (review 40c, an attack on the record). `orders` is published before the node
    enrolls (nothing to record); it enrolls with acme while another process holds node.db's
    write lock (a CLI command writing, say), taken once acme's writer has opened its session
    (the channel's own writes done). Its tools/list fixes acme: the list is answered while the
    lock is held, and once it is released the record is written (the storage worker waits for
    the lock, off the event loop) and a refund is answered. (A first call signed into the
    node's trace log while the lock is held waits for it, creating the node's signing key:
    not this change's.) Was a strict xfail until `_record_later` queued the write on the
    node's storage thread: the event loop waited there for the lock (every channel of the
    node stalled) and the record was lost when it timed out."""
    monkeypatch.setenv("TROTH_BUSY_TIMEOUT", "10")

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        published = await publish_upstream(tools, "orders", orders_server())
        assert published["grantable_by"] == []
        await _acme_tools(net, tools)
        writer = await net.member("writer", **{"orders.access": "write"})
        async with (
            connect(writer, "writer", "/tcp/tools:4000/service/mcp.orders") as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):  # the channel and the session open (their writes done), nothing decided yet
            other = sqlite3.connect(tools.node.path / "node.db", isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # another process's write in progress
                assert await names(agent) == REFUNDED[0]
                other.execute("COMMIT")
            finally:
                other.close()
            refund = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert text(refund) == REFUNDED[1]
        await tools.worker.run(lambda: None)  # the storage thread's earlier calls done
        assert recorded_grantors(tools.node, "orders") == (net.authority.identifier,)

    run_memnet(test, tmp_path)


def _other_server() -> object:
    """Another upstream: one tool, `wipe` (what an operator might publish under a reused name)."""
    from mcp.server import MCPServer

    app = MCPServer("other")

    @app.tool()
    def wipe(order_id: str) -> str:
        """Wipe an order."""
        return f"wiped {order_id}"

    return app


def test_a_name_reused_for_another_upstream_takes_the_names_record(tmp_path: Path) -> None:
    """Attack (refuted as a design decision, pinned): the node, acme's member, published
    `orders` naming globex (recorded); after a restart the operator publishes another upstream
    under `orders` naming none: the record is the operator's word on the name, so globex
    grants it (its answer says so) and acme's writer is shown none of its tools. The name
    grants no authority the operator did not name or the node did not have as its own."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await _acme_tools(net, tools)
        _globex_node, globex, _ticket = await globex_over_tcp(net)
        named = await publish_upstream(
            tools, "orders", orders_server(), grantable_by=(globex.identifier,)
        )
        assert named["grantable_by"] == [str(globex.identifier)]
        tools = await _restarted(net, tools)
        other = await publish_upstream(tools, "orders", _other_server())
        assert other["tools"] == ["wipe"]
        assert other["grantable_by"] == [str(globex.identifier)]
        writer = await net.member("writer", **{"orders.access": "write"})
        shown, answer = await refund_as(writer, "writer")
        assert shown == []
        assert answer.endswith("denied: no policy bundle")

    run_memnet(test, tmp_path)


def test_a_refused_publication_records_nothing_and_rows_are_bounded(tmp_path: Path) -> None:
    """Mcp 2 (review 40c, an attack on the record). Through the control socket or the library
    a name is any text: one of 5,000 characters naming acme is refused ("MCP server name"),
    and nothing is recorded for it; a publication naming MAX_MCP_GRANTORS + 1 authorities
    is refused ("at most"), nothing recorded; so each row holds at most a MAX_TOOL_NAME name
    and MAX_MCP_GRANTORS identifiers (with MAX_MCP_GRANTOR_RECORDS rows, the table is
    bounded in bytes too). Was a strict xfail until `publish_upstream` checked the name and
    the number of grantors (MAX_MCP_GRANTORS) before reading or writing the record."""

    async def test(net: MemNet) -> None:
        tools = await net.node("tools", listen=("tools", 4000))
        await _acme_tools(net, tools)
        acme = net.authority.identifier
        long_name = "x" * 5000
        with pytest.raises(PolicyError) as refused:
            await publish_upstream(tools, long_name, orders_server(), grantable_by=(acme,))
        assert "MCP server name" in str(refused.value)
        assert recorded_grantors(tools.node, long_name) is None
        many = tuple(Identifier(bytes([n]) * 32) for n in range(limits.MAX_MCP_GRANTORS + 1))
        with pytest.raises(PolicyError) as wide:
            await publish_upstream(tools, "orders", orders_server(), grantable_by=many)
        assert f"at most {limits.MAX_MCP_GRANTORS}" in str(wide.value)
        assert recorded_grantors(tools.node, "orders") is None
        assert "mcp.orders" not in tools.host.services

    run_memnet(test, tmp_path)
