"""The served broker's forward pool (troth.node.services.forwards): upstream calls run outside
the broker's thread, at most `limits.MAX_FORWARDS` at once and `MAX_FORWARDS_PER_AGENT` per
identity (one more is refused, never queued), and a forward is checked and audited on the
broker's thread right before it is sent, so a lease revoked while its forward waited is not
used. (A slow upstream holding back revocations: tests/test_attacks_review18.py; the deadline
of one forward: tests/test_secrets_http_inject.py.) The assertions are about the order of
events, never about durations."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.brokers import (
    PAYMENTS,
    POLICIES,
    broker_of,
    client,
    hub_bundle,
    install_bundle,
    run_broker,
)
from tests.support.leases import make_world
from tests.support.nodes import MemNet
from tests.support.upstreams import HeldUpstream, held_upstream
from troth import limits
from troth.errors import SecretError, SecretFailure
from troth.identity import Identifier
from troth.node.access import Decision
from troth.node.runtime import NodeRuntime
from troth.node.services.base import RequestContext
from troth.node.services.broker import _forward_account
from troth.node.services.forwards import ForwardPool
from troth.secrets import HttpRequest, HttpResponse, Lease, LeaseId, LeaseState
from troth.secrets.endpoint import BrokerCaller
from troth.secrets.wire import ForwardArgs, decode_response, raise_refusal

F = SecretFailure
GET = HttpRequest("GET", "/orders/1")
ORDERS_POLICIES = POLICIES + (
    '@id("orders-api") permit(principal, action == Action::"lease", '
    'resource == Secret::"orders-api");\n'
)


def secrets(upstream: HeldUpstream) -> dict[str, tuple[str, dict[str, Any], bytes]]:
    config = {
        "scopes": ["orders:read"],
        "upstream": upstream.url,
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/orders/*"}],
        "timeout": 30,
    }
    return {
        "payments": ("token", PAYMENTS, b""),
        "orders-api": ("http-inject", config, b"Bearer upstream-secret"),
    }


def dispatcher(
    net: MemNet, agent: NodeRuntime
) -> Callable[[LeaseId], Coroutine[Any, Any, HttpResponse]]:
    """`agent`'s forwards as the hub's service host dispatches them once its decision point
    allowed them — several at once, as an agent gets them over several connections (the
    memory network serves one connection's requests one after the other)."""
    assert net.hub is not None
    hub, identifier = net.hub, net.identifier(agent)
    caller = next(
        end.caller
        for end in hub.channels.ends.values()
        if end.peer is not None and end.peer.identifier == identifier
    )
    assert caller is not None
    handler = broker_of(hub).methods["forward"].handler

    async def forward(lease_id: LeaseId) -> HttpResponse:
        context = RequestContext(caller, (), Decision(True), hub.clock.now())
        answer = await handler(ForwardArgs(lease_id, GET).to_wire(), context)
        return decode_response(raise_refusal(answer))

    return forward


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_the_pool_refuses_beyond_its_limits_and_frees_a_place_once() -> None:
    pool = ForwardPool(total=3, per_agent=2)
    a, b, c = (Identifier(bytes([n]) * 32) for n in (1, 2, 3))
    first, _second = pool.admit(a), pool.admit(a)
    with pytest.raises(SecretError) as refused:
        pool.admit(a)  # its share is full
    assert refused.value.reason is F.BUSY
    held = pool.admit(b)
    with pytest.raises(SecretError) as refused:
        pool.admit(c)  # the pool is full
    assert refused.value.reason is F.BUSY
    assert (pool.running(), pool.running(a), pool.running(b)) == (3, 2, 1)
    first.release()
    first.release()  # once only
    assert (pool.running(), pool.running(a)) == (2, 1)
    held.release()
    pool.admit(c)
    pool.admit(a)
    assert (pool.running(), pool.running(a), pool.running(b)) == (3, 2, 0)
    pool.close()


def test_an_agent_gets_at_most_its_share_of_the_forward_pool(tmp_path: Path) -> None:
    """An agent with `MAX_FORWARDS_PER_AGENT` forwards held by its upstream is refused one
    more (BUSY, nothing sent); another agent's forward still goes
    through, and once the held ones ended the agent may forward again."""
    order: list[str] = []
    with held_upstream() as upstream:

        async def test(net: MemNet) -> None:
            assert net.hub is not None
            await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=ORDERS_POLICIES))
            slow, other = await net.member("slow"), await net.member("other")
            lease = await client(slow).issue("orders-api")
            theirs = await client(other).issue("orders-api")
            share = limits.MAX_FORWARDS_PER_AGENT
            forward = dispatcher(net, slow)
            held = [asyncio.create_task(forward(lease.lease_id)) for _ in range(share)]
            assert await asyncio.to_thread(upstream.arrivals, share)
            with pytest.raises(SecretError) as refused:
                await forward(lease.lease_id)
            order.append(refused.value.reason.name)
            others = asyncio.create_task(client(other).forward(theirs.lease_id, GET))
            assert await asyncio.to_thread(upstream.arrivals, 1)
            order.append("the other agent's forward reached the upstream")
            upstream.release.set()
            answers = await asyncio.gather(*held, others)
            assert [answer.status for answer in answers] == [204] * (share + 1)
            assert broker_of(net.hub).forwards.running() == 0
            assert (await client(slow).forward(lease.lease_id, GET)).status == 204
            order.append("forwarded again")

        run_broker(test, tmp_path, secrets=secrets(upstream))
    assert order == ["BUSY", "the other agent's forward reached the upstream", "forwarded again"]
    assert len(upstream.seen) == limits.MAX_FORWARDS_PER_AGENT + 2


def test_a_lease_revoked_while_its_forward_waits_is_not_forwarded(tmp_path: Path) -> None:
    """The broker's thread is busy (here: with an operator's revocation that starts once the
    forward has its place in the pool); the forward waits for it, and its check — right
    before sending — finds the lease revoked: refused, the upstream never asked."""
    order: list[str] = []
    with held_upstream() as upstream:

        async def test(net: MemNet) -> None:
            assert net.hub is not None
            await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=ORDERS_POLICIES))
            slow = await net.member("slow")
            lease = await client(slow).issue("orders-api")
            hub, service = net.hub, broker_of(net.hub)
            busy, admitted = threading.Event(), threading.Event()

            def revoke_once_admitted() -> Lease:  # on the broker's thread
                busy.set()
                if not admitted.wait(10):
                    raise AssertionError("the forward never got its place in the pool")
                return service.started().revoke_lease(lease.lease.handle, now=hub.clock.now())

            revoking = asyncio.ensure_future(service._run(revoke_once_admitted))
            assert await asyncio.to_thread(busy.wait, 10)
            forward = asyncio.create_task(client(slow).forward(lease.lease_id, GET))
            await until(lambda: service.forwards.running() == 1)
            order.append("waiting")
            admitted.set()
            assert (await revoking).state is LeaseState.REVOKED
            order.append("revoked")
            with pytest.raises(SecretError) as refused:
                await forward
            order.append(refused.value.reason.name)
            assert service.forwards.running() == 0

        run_broker(test, tmp_path, secrets=secrets(upstream))
    assert order == ["waiting", "revoked", "REVOKED"]
    assert upstream.seen == []


def test_a_members_delegates_share_its_share_of_the_pool() -> None:
    """Agent A acts by a delegation from the user (through an orchestrator): its forwards take
    the user's share, as every delegate the user mints for free would; agent B, a member
    itself, has its own (as leases count against `lease_account`)."""
    world = make_world(NOW)
    a = BrokerCaller(world.agent_a.identifier, (world.credential_a(),))
    b = BrokerCaller(world.agent_b.identifier, (world.credential_b(),))
    assert _forward_account(a) == frozenset({world.user.identifier})
    assert _forward_account(b) == frozenset({world.agent_b.identifier})
    pool = ForwardPool(total=4, per_agent=1)
    pool.admit(_forward_account(a))
    with pytest.raises(SecretError, match="of this member"):
        pool.admit(frozenset({world.user.identifier}))  # another delegate of the user
    pool.admit(_forward_account(b))
