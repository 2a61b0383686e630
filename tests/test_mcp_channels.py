"""MCP over secure channels (`troth mcp serve` / `troth mcp connect`) and the local MCP gate
(`troth mcp gate`): one published server serving agents each with its own rights, a caveat
biting on arguments, a revocation mid-task denying the next call over MCP, and one real stdio
end-to-end test per mode (real processes, real MCP clients)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.support.cli import run, run_json, stop_here
from tests.support.gates import POLICIES, TOOLS
from tests.support.mcp_orders import names, orders_server, text
from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.authority.client import enroll_request, revoke_request
from troth.clock import SystemClock
from troth.credentials import Attributes
from troth.errors import RemoteError
from troth.gates import ToolCall, create_bundle
from troth.identity import Identifier, Signer
from troth.integrations.mcp.connect import connect
from troth.integrations.mcp.gate import DENIED_PREFIX
from troth.node import init_node, open_node
from troth.node.runtime import AUTHORITY, NodeRuntime
from troth.node.services import call, service_address
from troth.node.services.mcp import publish_upstream
from troth.node.services.node_policies import LocalCredential, NodeFeeds, NodePolicies
from troth.node.services.policy import install_bundle
from troth.trace.dsse import parse_envelope
from troth.trace.log import open_node_log
from troth.trace.record import Kind
from troth.trace.record_decode import decode_payload
from troth.trace.verify import verify_log

ORDERS = f"{HUB}/service/mcp.orders"
UPSTREAM = [sys.executable, str(Path(__file__).parent / "support" / "mcp_orders.py")]
CAP = 'action != Action::"invoke:refund" || context.args.amount <= 100'  # refunds only (65g)


def support_bundle(signer: Signer, authority: Identifier, now: int) -> bytes:
    """Revision 1 of the support desk's bundle (tests/support/gates), signed by `signer`."""
    return create_bundle(
        signer,
        authority=authority,
        policies=POLICIES,
        schema="",
        tools=TOOLS,
        revision=1,
        now=now,
        ttl=3600,
    )


def install(net: MemNet) -> None:
    hub = net.hub
    assert hub is not None
    now = net.clock.now()
    data = support_bundle(hub.node.identities.signer("hub", now=now), net.authority.identifier, now)
    hub.policies.accept(data, now=now)


async def helper_of(net: MemNet, desk: NodeRuntime, caveats: tuple[str, ...]) -> bytes:
    """A local identity `helper` on desk's node holding a delegation from desk (the chain)."""
    now = net.clock.now()
    node = desk.node
    helper = node.identities.create(now=now, name="helper").identifier
    chain = node.wallet.delegate(
        "desk",
        to=helper,
        attributes=Attributes({"orders.access": "write"}),
        now=now,
        ttl=600,
        purpose="refund complaint 123",
        caveats=caveats,
    )
    node.wallet.hold("helper", chain, now=now)
    return chain


def test_one_published_server_serves_each_agent_with_its_own_rights(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        install(net)
        published = await publish_upstream(hub, "orders", orders_server())
        assert published["tools"] == ["lookup_order", "refund", "export_customers"]
        writer = await net.member("writer", **{"orders.access": "write"})
        reader = await net.member("reader", **{"orders.access": "read"})
        async with (
            connect(writer, "writer", ORDERS) as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == ["lookup_order", "refund"]
            refund = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert (refund.is_error, text(refund)) == (False, "refunded 20 on o1")
        async with (
            connect(reader, "reader", ORDERS) as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == ["lookup_order"]
            hidden = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            # told as a tool the bundle does not declare (review 47h, gates 1)
            assert text(hidden) == DENIED_PREFIX + "denied: the policy bundle declares no such tool"
            order = await agent.call_tool("lookup_order", {"order_id": "o9"})
            assert text(order) == "order o9: 2 items, paid"
        # every call decided is a record signed by the hub in its trace (issue 13, wired in)
        log = hub.traces.log()
        verify_log(log)
        decided = [decode_payload(parse_envelope(s.envelope).payload) for s in log.records()]
        calls = [(r.kind, r.tool.name if r.tool else None) for r in decided]
        assert calls.count((Kind.TOOL_INVOCATION, "refund")) == 1
        assert calls.count((Kind.DENIAL, "refund")) == 1
        assert calls.count((Kind.TOOL_INVOCATION, "lookup_order")) == 1
        service = hub.host.services["mcp.orders"]
        with anyio.fail_after(10):  # the sessions ended with their clients
            while service.status()["sessions"]:
                await anyio.sleep(0.01)

    run_memnet(test, tmp_path)


def test_a_caveat_bites_and_a_revocation_mid_task_denies_the_next_call(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        install(net)
        await publish_upstream(hub, "orders", orders_server())
        desk = await net.member("desk", **{"orders.access": "write"})
        chain = await helper_of(net, desk, (CAP,))
        async with (
            connect(desk, "helper", ORDERS, expect=net.authority.identifier) as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == ["lookup_order", "refund"]
            small = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert not small.is_error
            large = await agent.call_tool("refund", {"order_id": "o1", "amount": 500})
            assert text(large) == DENIED_PREFIX + "denied by policy caveat:1:0"
            link = desk.node.wallet.inspect(chain, now=net.clock.now()).links[-1].hash
            request = revoke_request(
                desk.node.identities,
                "desk",
                net.authority.identifier,
                credential_hash=link,
                chain=chain,
                reason="task done",
                now=net.clock.now(),
            )
            end = await desk.channel_to(route(HUB))
            await call(desk.router, (end.enc, AUTHORITY), "revoke", request)
            after = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert after.is_error
            assert "revoked" in text(after)

    run_memnet(test, tmp_path)


def test_sessions_per_peer_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from troth import limits

    monkeypatch.setattr(limits, "MAX_MCP_SESSIONS_PER_PEER", 1)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        install(net)
        await publish_upstream(hub, "orders", orders_server())
        writer = await net.member("writer", **{"orders.access": "write"})
        async with (
            connect(writer, "writer", ORDERS) as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == ["lookup_order", "refund"]
            with anyio.fail_after(20):
                async with connect(writer, "writer", ORDERS) as second:
                    with pytest.raises(Exception, match=r"unhandled errors in a TaskGroup"):
                        async with Client(second, mode="legacy", cache=None) as refused:
                            await refused.list_tools()
            assert await names(agent) == ["lookup_order", "refund"]  # the first one goes on

    run_memnet(test, tmp_path)


# -- stdio end to end: real processes --------------------------------------------------------


def cli(*args: str, code: int = 0) -> Any:
    """`troth ARGS` in this process (tests.support.cli), its exit code checked (its JSON with
    --json). The daemons are the real nodes the stdio tests drive: `node start` spawns each in a
    process of its own from this process as from a shell (an interpreter started for each
    command was most of the set-up's time: 71m ci for the others, 73f ci for start and stop)."""
    return run_json(*args[:-1], code=code) if args[-1] == "--json" else run(*args, code=code)


def stdio(*args: str) -> StdioServerParameters:
    """`troth ARGS` as a stdio MCP server (the SDK passes only its whitelisted environment,
    so the troth home is given explicitly, and the PYTHONPATH of a tree under test)."""
    tree = {k: v for k, v in os.environ.items() if k == "PYTHONPATH"}
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "troth.cli.main", *args],
        env={"TROTH_HOME": os.environ["TROTH_HOME"]} | tree,
    )


def shop(home: Path, clock: SystemClock) -> None:
    """Node `shop`: authority acme, its support bundle installed, identity `support` enrolled
    with orders.access=read,write and identity `nobody` holding nothing."""
    now = clock.now()
    init_node("shop", home=home)
    with open_node("shop", home=home) as node:
        authority = node.create_authority("acme", now=now)
        node.identities.create(now=now, name="nobody")
        node.identities.create(now=now, name="support")
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"orders.access": frozenset({"read", "write"})}),
            address="node:shop",
            now=now,
        )
        request = enroll_request(node.identities, "support", ticket, now=now)
        node.wallet.hold("support", authority.enroll(request, now=now).encode(), now=now)
        data = support_bundle(node.identities.signer("acme", now=now), authority.identifier, now)
    install_bundle(home, "shop", data, clock=clock)


def test_troth_mcp_gate_end_to_end_over_stdio(troth_home: Path) -> None:
    shop(troth_home, SystemClock())
    upstream = " ".join(UPSTREAM)

    async def main() -> None:
        gate = stdio("mcp", "gate", "--as", "support", "--upstream", upstream, "--node", "shop")
        async with Client(gate, cache=None) as agent:
            assert await names(agent) == ["lookup_order", "refund"]
            small = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert (small.is_error, text(small)) == (False, "refunded 20 on o1")
            hidden = await agent.call_tool("export_customers", {"fmt": "csv"})
            # told as a tool the bundle does not declare (review 47h, gates 1)
            assert text(hidden) == DENIED_PREFIX + "denied: the policy bundle declares no such tool"

    anyio.run(main)
    with open_node("shop", home=troth_home) as node:  # each call: a record support signed
        support = Identifier(node.identities.find("support").identifier)
        with open_node_log(node, clock=SystemClock()) as log:
            verify_log(log)
            decided = [decode_payload(parse_envelope(s.envelope).payload) for s in log.records()]
    calls = [(r.agent, r.kind, r.tool.name if r.tool else None) for r in decided]
    assert (support, Kind.TOOL_INVOCATION, "refund") in calls
    assert (support, Kind.DENIAL, "export_customers") in calls


def test_the_local_gate_says_when_its_identity_holds_no_credential(troth_home: Path) -> None:
    clock = SystemClock()
    shop(troth_home, clock)
    now = clock.now()
    with open_node("shop", home=troth_home) as node:
        feeds = NodeFeeds(node, clock)
        policies = NodePolicies(node, feeds)
        nobody = LocalCredential(node, "nobody", policies, anchors=feeds.anchors)
        call = ToolCall("lookup_order", {"order_id": "o1"})
        decision = policies.point.decide(nobody, call, now=now)
    assert not decision.allowed
    assert decision.reason == "denied: the caller holds no trusted credential"


@pytest.fixture
def hub_and_agent(troth_home: Path) -> Iterator[str]:
    """A running hub (authority acme, policy bundle installed, listening) and a running node
    `agent` holding a member credential with orders.access=write; yields the hub's route."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hub = f"/tcp/127.0.0.1:{port}"
    started: list[str] = []
    try:
        cli("authority", "create", "hub")
        cli("node", "start", "hub", "--tcp-listen", hub[5:])
        started.append("hub")
        with open_node("hub", home=troth_home) as node:
            now = SystemClock().now()
            feeds = NodeFeeds(node, SystemClock())
            policies = NodePolicies(node, feeds)
            policies.trust(feeds.anchors(), now=now)
            authority = node.authority().identifier
            data = support_bundle(node.identities.signer("hub", now=now), authority, now)
        bundle = troth_home / "shop.bundle"
        bundle.write_bytes(data)
        pushed = cli("policy", "push", str(bundle), "--node", "hub", "--json")
        assert (pushed["revision"], pushed["node_running"]) == (1, True)
        cli("node", "create", "agent")
        ticket = cli(
            "authority", "ticket", "create", "--authority", "hub", "--attr",
            "orders.access=write", "--json",
        )  # fmt: skip
        cli("enroll", ticket["ticket"], "--as", "agent", "--node", "agent")
        cli("node", "start", "agent")
        started.append("agent")
        yield hub
    finally:
        for name in started:
            stop_here(name)


def test_troth_mcp_serve_and_connect_end_to_end_over_stdio(hub_and_agent: str) -> None:
    served = cli(
        "mcp", "serve", "orders", "--upstream", " ".join(UPSTREAM), "--node", "hub", "--json"
    )
    assert served["tools"] == ["lookup_order", "refund", "export_customers"]
    shown = cli("policy", "show", "--node", "hub", "--json")
    assert [(b["revision"], b["in_force"]) for b in shown] == [(1, True)]

    async def main() -> None:
        connected = stdio(
            "mcp", "connect", f"{hub_and_agent}/service/mcp.orders", "--as", "agent",
            "--node", "agent",
        )  # fmt: skip
        async with Client(connected, cache=None) as agent:
            assert await names(agent) == ["lookup_order", "refund"]
            small = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert (small.is_error, text(small)) == (False, "refunded 20 on o1")
            large = await agent.call_tool("refund", {"order_id": "o1", "amount": 5000})
            assert text(large) == DENIED_PREFIX + "denied by policy refund-cap"

    anyio.run(main)


def test_an_mcp_server_behind_a_relay_needs_no_open_port(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        install(net)
        tools = await net.member("tools", **{"troth.relay": "tools"})  # no listening port
        await tools.maintain()  # pulls the bundle from the hub
        await publish_upstream(tools, "orders", orders_server())
        await tools.create_relay("tools", HUB)
        writer = await net.member("writer", **{"orders.access": "write"})
        async with (
            connect(writer, "writer", f"{HUB}/relay/tools/service/mcp.orders") as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == ["lookup_order", "refund"]
            refund = await agent.call_tool("refund", {"order_id": "o1", "amount": 20})
            assert text(refund) == "refunded 20 on o1"

    run_memnet(test, tmp_path)


async def orders_by_frames(net: MemNet, access: str) -> tuple[Any, NodeRuntime, Any]:
    """The hub's `mcp.orders` service (published), a member `writer` with `orders.access`
    `access`, and the address it sends raw frames to over its channel to the hub."""
    hub = net.hub
    assert hub is not None
    install(net)
    await publish_upstream(hub, "orders", orders_server())
    writer = await net.member("writer", **{"orders.access": access})
    end = await writer.channel_to(route(HUB))
    return hub.host.services["mcp.orders"], writer, (end.enc, service_address("mcp.orders"))


def test_send_refuses_malformed_frames_and_sessions_stay_with_their_channel(
    tmp_path: Path,
) -> None:
    from troth.integrations.mcp.frames import McpFrame

    async def test(net: MemNet) -> None:
        service, writer, address = await orders_by_frames(net, "write")
        ping = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
        for arguments in (
            ["not a frame", "mcp-1"],
            [b"\xa0", "mcp-1"],
            [McpFrame(b"s" * 16, ping).encode(), "not/a worker"],
            "no array",
        ):
            with pytest.raises(RemoteError, match="malformed MCP frame"):
                await call(writer.router, address, "send", arguments)
        assert service.status()["sessions"] == 0
        session = b"s" * 16
        await call(writer.router, address, "send", [McpFrame(session, ping).encode(), "mcp-1"])
        other = await writer.channel_as("writer", route(HUB))  # another channel, same session id
        await call(
            writer.router,
            (other.enc, address[1]),
            "send",
            [McpFrame(session, ping).encode(), "mcp-1"],
        )
        assert service.status()["sessions"] == 2  # one per (channel, session): never shared

    run_memnet(test, tmp_path)


def test_one_members_messages_spend_its_budget_not_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every tools/call is decided and, on a recording node, signed into its log: a member's
    messages to a published server spend a budget of its own (here 12 messages and no refill,
    so the test stays small), each message counted as at least MCP_MESSAGE_CHARGE bytes. The
    member that spent it is refused; another member is served."""
    from troth import limits

    monkeypatch.setattr(limits, "MCP_BURST_BYTES", 12 * limits.MCP_MESSAGE_CHARGE)
    monkeypatch.setattr(limits, "MCP_BYTES_PER_SECOND", 1)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        install(net)
        await publish_upstream(hub, "orders", orders_server())
        writer = await net.member("writer", **{"orders.access": "read"})
        answers: list[str] = []
        with anyio.fail_after(30):
            async with (
                connect(writer, "writer", ORDERS) as transport,
                Client(transport, mode="legacy", cache=None) as agent,
            ):
                for _ in range(40):
                    try:
                        answers.append(
                            text(await agent.call_tool("lookup_order", {"order_id": "o1"}))
                        )
                    except Exception as exc:
                        answers.append(str(exc))
        served = [a for a in answers if a.startswith("order o1")]
        assert 0 < len(served) < 12
        assert "the member's MCP budget is spent" in answers[-1]
        honest = await net.member("honest", **{"orders.access": "read"})
        async with (
            connect(honest, "honest", ORDERS) as transport,
            Client(transport, mode="legacy", cache=None) as agent,
        ):
            assert await names(agent) == ["lookup_order"]

    run_memnet(test, tmp_path)
