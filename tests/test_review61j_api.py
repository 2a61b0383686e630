"""Review 61j: adversarial review of the public API's gates and leased secrets
(`Node.policies`, `Node.secrets`, written by review 61g): what `decide` answers against what
the node's gates decide for the same call, and arguments of the wrong kind."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

import troth
from tests.conftest import NOW
from tests.support.brokers import PAYMENTS
from tests.support.gates import POLICIES
from tests.support.policy_world import TOOLS, WRITE
from tests.support.public_api import Agents, acme_and_agents
from troth.storage.sqlite_mcp import SqliteMcpGrantors

LEASES = """\
@id("any") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when { principal.hasTag("orders.access") };
"""
REFUND = {"order_id": "4471", "amount": 20}


@pytest.fixture
def world() -> Iterator[Agents]:
    """acme's hub and the agents node, both holding revision 1 of POLICIES."""
    with acme_and_agents() as made:
        data = made.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
        made.hub.policies.install(data)
        made.agents.policies.install(data)
        yield made


def test_a_credential_revoked_on_this_machine_is_denied_on_a_receiving_node(
    world: Agents,
) -> None:
    """Review 61j, api 1: acme (its hub on this machine) revokes `writer`'s credential, which
    marks the agents node due a sync of acme's feed (troth.node.localdue). The agents node's
    gates then deny the chain (a peer presenting it: `Standing.waiting`, or the feed synced
    first: revoked), and `decide` by the local identity's name denies it (its copy of the
    feed is synced first: `LocalCredential`); `decide` given the `Credential` read the feed the
    node held before the revocation and allowed the refund."""
    world.agents.identities.create("writer")
    write = world.agents.enroll(world.acme.ticket(WRITE), identity="writer")
    decide = world.agents.policies.decide
    assert decide(write, "refund", REFUND).allowed
    world.acme.revoke(write, reason="left")
    presented = decide(write, "refund", REFUND)
    assert (presented.allowed, presented.outcome) == (False, troth.Outcome.CREDENTIAL)
    assert "revoked" in presented.reason
    assert not decide("writer", "refund", REFUND).allowed  # what the gates decide


@pytest.fixture
def hub() -> Iterator[troth.Node]:
    """A node hosting an authority, holding no bundle."""
    with troth.Node.open("acme") as node:
        node.create_authority()
        yield node


def test_a_service_mapped_to_no_list_is_an_argument_error(hub: troth.Node) -> None:
    """Review 61j, api 2: `sign(services={"orders": "read"})` (a str where the list of method
    names goes) raised the CLI's DecodeError of a services file."""
    for services in ({"orders": "read"}, {"orders": [1, 2]}):
        with pytest.raises(troth.ArgumentError) as refused:
            hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=2, services=services)  # type: ignore[arg-type]
        assert refused.value.parameter == "services"


def test_an_authority_of_the_wrong_kind_is_an_argument_error(hub: troth.Node) -> None:
    """Review 61j, api 3: `sign(authority=5)` was looked up as a local identity's name
    (NotFound "no local identity 5")."""
    with pytest.raises(troth.ArgumentError) as refused:
        hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=2, authority=5)  # type: ignore[arg-type]
    assert refused.value.parameter == "authority"


def test_an_identity_revoked_here_by_a_co_trusted_authority_is_denied(world: Agents) -> None:
    """Review 61j, api 4: `writer` holds a chain of acme (whose bundle decides) and one of
    beta, both authorities on this machine. beta revokes `writer`'s identity, which marks the
    agents node due a sync of beta's feed. `LocalCredential` (what the local MCP gate and
    `decide` by name decide with) judges the identity by the feeds of all the authorities
    whose chains it holds, but reads beta's copy as held, due a sync and without the
    revocation, and allowed the refund; once that copy is synced, the same call is denied."""
    with troth.Node.open("beta") as beta_node:
        beta = beta_node.create_authority()
        writer = world.agents.identities.create("writer")
        world.agents.enroll(world.acme.ticket(WRITE), identity=writer)
        world.agents.enroll(beta.ticket({"x.y": "z"}), identity=writer)
        assert world.agents.policies.decide(writer, "refund", REFUND).allowed
        beta.revoke_identity(writer, reason="stolen")
        decision = world.agents.policies.decide(writer, "refund", REFUND)
    assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)


def test_a_published_servers_tool_is_decided_by_its_granting_authorities_only(
    world: Agents,
) -> None:
    """Review 61j, api 5: the hub hosts acme and trusts beta too, and holds beta's bundle
    (the same policies: beta's members may refund). A tool of an MCP server the hub publishes
    (`server=`) is decided for a peer by the bundles of the authorities granting it only
    (`GrantedBundles`: the ones recorded at its publication, else the node's own, acme; review
    37c, mcp 1): beta's member is denied there "no policy bundle". `decide` of beta's member's
    `Credential` for that server asked beta's bundle, and allowed the refund."""
    with troth.Node.open("beta") as beta_node:
        beta = beta_node.create_authority()
        world.hub.identities.create("beta-member")
        world.hub.enroll(beta.ticket({"x.y": "z"}), identity="beta-member")  # hub trusts beta
        world.hub.policies.install(
            beta_node.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
        )
        member = world.agents.enroll(beta.ticket(WRITE), identity=world.sub)
        assert world.hub.policies.decide(member, "refund", REFUND).allowed  # beta's own call
        decision = world.hub.policies.decide(member, "refund", REFUND, server="shop")
        assert (decision.allowed, decision.outcome) == (False, troth.Outcome.NOT_IN_FORCE)
        # published granted by beta (`troth mcp publish ... --grantable-by beta`): recorded
        grants = SqliteMcpGrantors(world.hub._stored.db)
        grants.record("shop", [str(beta.identifier)], now=NOW, limit=8)
        assert world.hub.policies.decide(member, "refund", REFUND, server="shop").allowed
        held = world.agents.credentials(world.support)[0]  # acme's member: not granted there
        refused = world.hub.policies.decide(held, "lookup_order", {"order_id": "1"}, server="shop")
        assert (refused.allowed, refused.outcome) == (False, troth.Outcome.NOT_IN_FORCE)


def test_an_operators_revocation_is_signed_into_the_trace_log() -> None:
    """Review 61j, api 6: the hub's broker lends `support` a token (its record in the hub's
    signed trace log, as every lease event of the served broker). `troth lease revoke
    --holder` revokes through the node's broker (`broker.revoke-identity`: a record "revoked"
    for each lease); `Secrets.revoke_holder` opened a broker of its own on the store, whose
    audit went to the database's audit table, and the trace log never showed the revocation."""
    with acme_and_agents() as world:
        world.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        world.hub.policies.publish(policies=LEASES, tools={}, revision=1)

        def last_lease_decision() -> str:
            records = [r for r in world.hub.traces.show() if r["kind"] == "lease"]
            return str(records[-1]["decision"])

        async def lease(revoke: bool) -> None:
            async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
                at, hub = running.address, running.identifier
                await world.agents.secrets.lease(
                    "payments", holder="support", broker=at, expect=hub
                )
                if revoke:  # served in this process: signed by its trace recorder
                    (revoked,) = world.hub.secrets.revoke_holder(world.support)
                    assert revoked.state.name == "REVOKED"
                    assert last_lease_decision() == "revoked"

        asyncio.run(lease(False))
        (revoked,) = world.hub.secrets.revoke_holder(world.support)  # the node not running
        assert revoked.state.name == "REVOKED"
        assert last_lease_decision() == "revoked"
        asyncio.run(lease(True))
        world.hub.traces.verify()  # each record signed (TraceError otherwise)


def test_a_lease_from_another_event_loop_leaves_the_serve_block_sound() -> None:
    """Review 61j, api 7: the agents node served on an event loop in a thread, and
    `agents.secrets.lease` awaited on another loop (`asyncio.run` in the main thread): the
    lease's channel was opened inside the served runtime from the other loop, and when that
    loop closed, the serve block's end (closing every channel) raised "Event loop is closed".
    A call from another loop is to be refused (ConfigError) or run soundly."""
    with acme_and_agents() as world:
        world.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        world.hub.policies.publish(policies=LEASES, tools={}, revision=1)
        ready, ended = threading.Event(), threading.Event()
        seen: dict[str, object] = {}

        async def serve() -> None:
            stop = asyncio.Event()
            hub, agents = world.hub.serve(listen=("127.0.0.1", 0)), world.agents.serve()
            async with hub as hub_running, agents:
                seen.update(at=hub_running.address, hub=hub_running.identifier, stop=stop)
                seen["loop"] = asyncio.get_running_loop()
                ready.set()
                await stop.wait()

        def thread() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:  # what the serve block's end raised
                seen["failed"] = exc
            finally:
                ended.set()

        threading.Thread(target=thread, daemon=True).start()
        assert ready.wait(30)

        async def lease() -> None:
            with contextlib.suppress(troth.ConfigError):  # refused: another loop serves it
                await world.agents.secrets.lease(
                    "payments", holder="support", broker=str(seen["at"]), expect=str(seen["hub"])
                )

        try:
            asyncio.run(lease())
        finally:
            loop = seen["loop"]
            assert isinstance(loop, asyncio.AbstractEventLoop)
            loop.call_soon_threadsafe(seen["stop"].set)  # type: ignore[attr-defined]
            assert ended.wait(30)
        assert "failed" not in seen, seen.get("failed")
