"""Attacks that hold back the served broker's work, found while moving http-inject's upstream
calls off the broker's thread (tests/test_secrets_forward_pool.py):

1. a node serves the requests of one connection one after the other: an agent's forward to a
   slow upstream holds back every request of the agents whose channels share that connection
   (ran: the agents of one node; read, not run: a broker reached through a relay gets every
   relayed channel over its one connection to the relay);
2. the postgres engine's admin connections have no lock or statement timeout: an agent with
   two leases keeps a transaction open on a table its other lease's role owns, and that role's
   revocation (`DROP OWNED`) waits for it on the broker's thread — every revocation, the feed's
   included, and the sweep wait with it, and the agent's other session keeps its access.

Each test asserts the secure behaviour and is marked xfail (strict) while the bug is there.
Fixed: 1. a peer's requests run concurrently, each in a task of its own, within per-member,
per-connection and node limits (docs/protocols.md, "Concurrent requests"); 2. lock and
statement timeouts on the admin sessions (limits.POSTGRES_LOCK_TIMEOUT_MS); since review 44b
(postgres 1) the revocation also ends the sessions holding locks on what it drops, so it
completes at once and the holder's session is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

from tests.support.brokers import client, hub_bundle, install_bundle, run_broker
from tests.support.leases import make_world
from tests.support.nodes import MemNet
from tests.support.upstreams import held_upstream
from tests.test_secrets_forward_pool import GET, ORDERS_POLICIES, secrets
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` is a fixture
    SECRET,
    OrdersDb,
    login,
    now,
    orders,
)
from tests.test_secrets_postgres import setup as pg_setup
from tests.test_secrets_served import agent_identity
from troth.secrets import LeaseState

# -- 1. one connection, one request at a time -----------------------------------------------------


def test_a_slow_forward_does_not_hold_back_the_agents_sharing_its_connection(
    tmp_path: Path,
) -> None:
    """Two agents on one node (each leasing as itself, over the node's one connection to the
    broker's node): agent-a
    forwards to an upstream that does not answer yet; agent-b gives a lease back. The broker's
    thread is free (the forward runs in the pool), but agent-b's request waits behind agent-a's
    on the connection until the upstream answered (at most the secret's timeout, 120 s, per
    forward: and agent-a may send the next one)."""
    order: list[str] = []
    with held_upstream() as upstream:

        async def test(net: MemNet) -> None:
            assert net.hub is not None
            await install_bundle(net.hub, hub_bundle(net.hub, revision=2, policies=ORDERS_POLICIES))
            desk = await net.node("desk")
            for name in ("agent-a", "agent-b"):
                await agent_identity(net, desk, name, "support")
            a, b = client(desk, "agent-a"), client(desk, "agent-b")
            lease = await a.issue("orders-api")
            theirs = await b.issue("payments", scope=("refunds",))
            forward = asyncio.create_task(a.forward(lease.lease_id, GET))
            assert await asyncio.to_thread(upstream.arrivals, 1)
            revoke = asyncio.create_task(b.revoke(theirs.lease_id))
            done, _ = await asyncio.wait({revoke}, timeout=5)  # the upstream holds it 20 s
            order.append("given back" if done else "still waiting")
            upstream.release.set()
            assert (await forward).status == 204
            assert (await revoke).state is LeaseState.REVOKED

        run_broker(test, tmp_path, secrets=secrets(upstream))
    assert order == ["given back"]  # while agent-a's upstream had not answered yet


# -- 2. a lock held against a postgres revocation -------------------------------------------------


def test_an_open_transaction_does_not_hold_a_postgres_revocation(
    tmp_path: Path,
    orders: OrdersDb,  # noqa: F811 - the fixture of tests/test_secrets_postgres.py
) -> None:
    """A lease may create objects (in its own schema, review 70n; before, a template's
    `CREATE ON SCHEMA public`). The agent takes two leases: as the first lease's
    role it creates a table and lets the second read it; as the second, it reads it in a
    transaction it leaves open. Revoking the first lease ends its sessions and then waits in
    `DROP OWNED` for that lock, on the broker's thread, until the transaction ends — never, if
    the agent wants (idle_in_transaction_session_timeout is 0 by default). A revocation of the
    agent by the feed revokes the first lease first (issue order) and stalls the same way,
    with the second lease's session still open."""
    import psycopg  # the postgres extra, as tests/test_secrets_postgres.py imports it

    world = make_world(now())
    broker = pg_setup(tmp_path, world, orders)
    agent = world.credential_a()
    owner = broker.issue(agent, SECRET, scope=["orders:write"], now=now())
    reader = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    owning, reading = owner.credential.reveal(), reader.credential.reveal()
    mine = login(orders, owning)
    mine.execute("CREATE TABLE mine (x int)")
    mine.execute(f'GRANT SELECT ON mine TO "{reading["user"]}"')
    mine.execute(f'GRANT USAGE ON SCHEMA "{owning["user"]}" TO "{reading["user"]}"')
    holding = login(orders, reading)
    holding.autocommit = False
    holding.execute(f'SELECT * FROM "{owning["user"]}".mine').fetchall()  # noqa: S608  # the transaction stays open: its lock too
    order: list[str] = []
    returned = threading.Event()

    def revoke() -> None:
        try:
            broker.revoke(agent, owner.lease_id, now=now())
        finally:
            returned.set()

    threading.Thread(target=revoke, daemon=True).start()
    order.append("returned" if returned.wait(20) else "still waiting")
    with contextlib.suppress(psycopg.Error):  # ended by the revocation (review 44b, postgres 1)
        holding.rollback()  # else lets a stalled revocation finish
    assert returned.wait(30)
    holding.close()
    assert order == ["returned"]  # while the transaction was still open
    lease = broker.book.lease(owner.lease.handle)
    assert lease is not None
    assert lease.state is LeaseState.REVOKED  # the holder's session ended, nothing to retry
