"""Review 21's residual finding on node-wide pools (tests/test_attacks_review21_node.py, "Held";
docs/protocols.md, "Shares of node-wide pools"): a node trusting acme and globex shares its
running requests, relay names, policy subscriptions, trace submissions in progress and MCP
sessions first-come between both authorities'
members, and globex mints members for free: its members fill a pool and every acme member is
refused. Each test fills one pool (its bound made small) with globex's members, then an acme
member must still get a place, while globex's next one is refused (each authority within its
share past the bound, so the pool stays bounded).

Each test asserts the secure behaviour and was marked xfail (strict) while the bug was there.
Fixed: past a pool's bound, a place is still taken for a caller one of whose authorities holds
less than its share of the bound (`troth.node.shares.Shares`), so at most twice the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.support.mcp_orders import names, orders_server
from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.test_mcp_channels import ORDERS, install
from tests.test_trace_node import TRACE, signed_batch
from troth import limits
from troth.authority import Authority
from troth.credentials import Attributes
from troth.errors import Busy, RemoteError
from troth.integrations.mcp.connect import connect
from troth.node.runtime import NodeRuntime
from troth.node.services import call
from troth.node.services.admission import RequestLimits
from troth.node.services.mcp import publish_upstream
from troth.node.services.policy import POLICY, PolicyService
from troth.node.shares import LOCAL, STRANGERS, Shares
from troth.trace.submit import Receipts

BOUND = 3  # each pool's bound here: at a node trusting two authorities, a share of one place


async def _co_trusted(net: MemNet) -> tuple[NodeRuntime, Authority]:
    """The hub (acme), enrolled with globex too: it trusts both. Globex's authority."""
    assert net.hub is not None
    _node, globex, ticket = await globex_over_tcp(net)
    await net.hub.enroll(ticket, "hub")
    assert globex.identifier in net.hub.trust.anchors
    return net.hub, globex


async def _globex_member(net: MemNet, globex: Authority, name: str) -> NodeRuntime:
    """A member globex minted (free for it), holding `troth.relay=*`."""
    member = await net.node(name)
    invite = globex.create_ticket(
        creator=globex.identifier,
        attributes=Attributes({"globex.team": "desk", "troth.relay": "*"}),
        address="/tcp/globex:4000",
        now=net.clock.now(),
    )
    await member.enroll(str(invite), name)
    return member


async def _ask(member: NodeRuntime, service: Any, method: str, value: Any) -> Any:
    end = await member.channel_to(route(HUB))
    return await call(member.router, (end.enc, service), method, value, timeout=3)


@contextlib.asynccontextmanager
async def _storage_held(hub: NodeRuntime) -> AsyncIterator[list[asyncio.Future[Any]]]:
    """The hub's storage thread kept busy until the block ends; then the requests started
    meanwhile (put in the list) are waited for, whatever they answer."""
    gate = threading.Event()
    busy = asyncio.ensure_future(hub.worker.run(gate.wait, 30))
    started: list[asyncio.Future[Any]] = []
    try:
        yield started
    finally:
        gate.set()
        await busy
        await asyncio.gather(*started, return_exceptions=True)


def test_a_co_trusted_authoritys_members_leave_running_requests_for_anothers(
    tmp_path: Path,
) -> None:
    """The hub runs at most 3 requests at once. A globex member holds 3 (pushes waiting for
    the hub's storage thread): acme's member's request must still run; globex's next is
    answered busy."""

    async def test(net: MemNet) -> None:
        hub, globex = await _co_trusted(net)
        hub.host.admission.limits = RequestLimits(total=BOUND)
        mallory = await _globex_member(net, globex, "mallory")
        honest = await net.member("honest")
        acme = net.authority.identifier
        async with _storage_held(hub) as started:
            end = await mallory.channel_to(route(HUB))
            for _ in range(BOUND):
                push = call(mallory.router, (end.enc, POLICY), "push", [b"x"])
                started.append(asyncio.ensure_future(push))
            while hub.host.running < BOUND:
                await asyncio.sleep(0.01)
            assert await _ask(honest, POLICY, "get", [acme.digest, 0]) is None
            with pytest.raises(
                Busy, match=r"requests are running on this node \(its share of them for"
            ):  # sent again until its timeout
                await _ask(mallory, POLICY, "get", [acme.digest, 0])

    run_memnet(test, tmp_path / "home", budget=90)


def test_a_co_trusted_authoritys_members_leave_relay_names_for_anothers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relay node hosting none, enrolled with acme and globex, holds at most 3 relay names. A
    globex member creates 3: acme's member must still create its own; globex's next name is
    refused. (A node hosting an authority relays for that authority's members alone: review
    38a, relay 1, tests/test_review38a_relay.py.)"""
    monkeypatch.setattr(limits, "MAX_RELAYS", BOUND)
    relay = "/tcp/relay:4000"

    async def test(net: MemNet) -> None:
        _globex_node, globex, ticket = await globex_over_tcp(net)
        node = await net.node("relay", listen=("relay", 4000))
        await node.enroll(net.ticket(), "relay")
        await node.enroll(ticket, "relay")
        assert {net.authority.identifier, globex.identifier} <= set(node.trust.anchors)
        mallory = await _globex_member(net, globex, "mallory")
        for n in range(BOUND):
            await mallory.create_relay(f"mallory-{n}", relay)
        honest = await net.member("honest", **{"troth.relay": "honest"})
        await honest.create_relay("honest", relay)
        with pytest.raises(RemoteError, match="relay names"):
            await mallory.create_relay("one-more", relay)

    run_memnet(test, tmp_path / "home", budget=90)


def test_a_co_trusted_authoritys_members_leave_policy_subscriptions_for_anothers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub pushes bundles to at most 3 subscriptions. Globex's members subscribe to
    globex's bundles (3 places; acme's they may not: review 36f, policy 2): acme's member must
    still be subscribed; globex's next subscription is not kept."""
    monkeypatch.setattr(limits, "MAX_POLICY_SUBSCRIBERS", BOUND)

    async def test(net: MemNet) -> None:
        hub, globex = await _co_trusted(net)
        service = hub.host.services["policy"]
        assert isinstance(service, PolicyService)
        acme = net.authority.identifier
        members = [await _globex_member(net, globex, name) for name in ("mallory", "trudy", "eve")]
        for member in members:
            await _ask(member, POLICY, "get", [globex.identifier.digest, 0])
        assert len(service.subscriptions) == BOUND
        honest = await net.member("honest")
        await _ask(honest, POLICY, "get", [acme.digest, 0])
        assert (net.identifier(honest), acme) in service.subscriptions
        oscar = await _globex_member(net, globex, "oscar")
        await _ask(oscar, POLICY, "get", [globex.identifier.digest, 0])
        assert (net.identifier(oscar), globex.identifier) not in service.subscriptions

    run_memnet(test, tmp_path / "home", budget=90)


def test_a_co_trusted_authoritys_members_leave_trace_submissions_for_anothers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub works on at most 3 submissions at once. Globex's members hold 3 (waiting for
    the hub's storage thread): acme's member's submission must still be taken; globex's next
    is answered busy."""
    monkeypatch.setattr(limits, "MAX_TRACE_SUBMITS", BOUND)

    async def test(net: MemNet) -> None:
        hub, globex = await _co_trusted(net)
        mallory = await _globex_member(net, globex, "mallory")
        trudy = await _globex_member(net, globex, "trudy")
        honest = await net.member("honest")

        def submit(member: NodeRuntime, name: str) -> asyncio.Future[Any]:
            batch = signed_batch(member, name, net.clock.now())
            return asyncio.ensure_future(_ask(member, TRACE, "submit", batch.submission.to_cbor()))

        async with _storage_held(hub) as started:
            started += [submit(mallory, "mallory"), submit(mallory, "mallory")]
            started.append(submit(trudy, "trudy"))
            while hub.host.running < BOUND:
                await asyncio.sleep(0.01)
            taken = submit(honest, "honest")
            started.append(taken)
            with pytest.raises(RemoteError, match="too many submissions"):
                await submit(trudy, "trudy")
        (result,) = Receipts.from_cbor(await taken, expected=1).results
        assert result.delivered

    run_memnet(test, tmp_path / "home", budget=90)


def test_a_co_trusted_authoritys_members_leave_mcp_sessions_for_anothers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's published MCP server holds at most 3 sessions. A globex member opens 3: acme's
    member must still open one; globex's next is refused."""
    monkeypatch.setattr(limits, "MAX_MCP_SESSIONS", BOUND)

    async def test(net: MemNet) -> None:
        hub, globex = await _co_trusted(net)
        install(net)
        await publish_upstream(hub, "orders", orders_server())
        mallory = await _globex_member(net, globex, "mallory")
        honest = await net.member("honest", **{"orders.access": "write"})
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(BOUND):
                assert await _session(stack, mallory, "mallory") == []
            assert await _session(stack, honest, "honest") == ["lookup_order", "refund"]
            async with connect(mallory, "mallory", ORDERS) as transport:
                with pytest.raises(Exception, match=r"unhandled errors in a TaskGroup"):
                    async with Client(transport, mode="legacy", cache=None) as refused:
                        await refused.list_tools()

    run_memnet(test, tmp_path / "home", budget=90)


async def _session(
    stack: contextlib.AsyncExitStack[bool | None], member: NodeRuntime, name: str
) -> list[str]:
    """An MCP session of `member` (identity `name`) with the hub's `orders`, kept open in
    `stack`: the tools it may call (none for globex's members: acme's bundle grants them none)."""
    transport = await stack.enter_async_context(connect(member, name, ORDERS))
    agent = await stack.enter_async_context(Client(transport, mode="legacy", cache=None))
    return await names(agent)


def test_each_authority_keeps_its_share_of_a_full_pool_and_the_pool_stays_bounded() -> None:
    """The rule itself (troth.node.shares), at a node trusting acme and globex: globex fills a
    pool of 8 alone; past it, acme, the strangers and the local callers each take their share
    (2), globex none; the pool then holds 14, within twice its bound; a place given back is
    taken again."""
    acme, globex = frozenset({b"acme"}), frozenset({b"globex"})
    strangers, local = frozenset({STRANGERS}), frozenset({LOCAL})
    shares = Shares(lambda: 2)
    for _ in range(8):
        assert shares.room(globex, 8)
        shares.take(globex)
    assert not shares.room(globex, 8)
    for authorities in (acme, acme, strangers, strangers, local, local):
        assert shares.room(authorities, 8)
        shares.take(authorities)
    assert not shares.room(acme, 8)
    assert not shares.room(strangers, 8)
    assert not shares.room(local, 8)
    assert shares.room(acme | globex, 8) is False  # a member of both: both hold their share
    assert shares.places == 14
    shares.release(acme)
    assert shares.room(acme, 8)
    assert not shares.room(globex, 8)
    assert Shares.counted(lambda: 2, [globex] * 16).room(acme, 8) is False  # twice the bound
    for _ in range(8):
        shares.release(globex)
    assert shares.holders() == 3  # acme, the strangers and the local callers; globex forgotten
