"""Review 55i: revocation end to end, across layers, on real node runtimes.

mcp 1: while a node's copy of an authority's feed is due a sync (a link revocation made on this
machine, its process killed after the authority's commit: docs/credentials.md, "Revocation is
real"), the node's access decisions drop that authority's chains (`NodeTrust.standing`; review
48w, duepeer 1). The credential source of an MCP session over a channel (`PeerCredential`,
what the gate decides each tools/call with) re-verified the chains the peer presented at the
handshake against the held feed instead, which predates the revocation: it handed the gate
the chain the node's own standing drops.

mcp 2: likewise the local MCP gate's (`troth mcp gate`: `LocalCredential`) took the local
identity's held chains, verified against the held feed, whatever mark stood: the identity's
tool calls were decided with a chain of an authority whose chains the node hands out to no
peer until its copy of the feed is synced (`CredentialWallet.presentable`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.brokers import hub_bundle
from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from troth.channel import VerifiedPeer
from troth.credentials import Attributes
from troth.errors import CredentialError
from troth.node.runtime import NodeRuntime
from troth.node.services.node_policies import LocalCredential, PeerCredential
from troth.routing import parse_route

DESK = "/tcp/desk:4000"


async def _desk_and_agent(net: MemNet) -> tuple[NodeRuntime, VerifiedPeer]:
    """desk (a member node, listening, holding the hub's bundle) and the peer of the channel a
    member `agent` opened to it, as desk verified it."""
    desk = await net.node("desk", listen=("desk", 4000))
    await desk.enroll(net.ticket(), "desk")
    agent = await net.member("agent")
    await agent.channel_to(parse_route(DESK))
    assert net.hub is not None
    await asyncio.to_thread(desk.policies.accept, hub_bundle(net.hub), now=net.clock.now())
    [peer] = [
        end.peer
        for end in desk.channels.ends.values()
        if end.peer is not None and end.peer.identifier == agent.identifier
    ]
    return desk, peer


def _helper_of(desk: NodeRuntime, now: int) -> LocalCredential:
    """The local gate's credential source of a local identity `helper` holding desk's
    delegation (agents.team=support)."""
    node = desk.node
    helper = node.identities.create(now=now, name="helper").identifier
    chain = node.wallet.delegate(
        "desk",
        to=helper,
        attributes=Attributes({"agents.team": "support"}),
        now=now,
        ttl=600,
        purpose="p",
    )
    node.wallet.hold("helper", chain, now=now)
    return LocalCredential(node, "helper", desk.policies)


def test_an_mcp_sessions_credential_waits_for_a_due_feed_as_the_standing_does(
    tmp_path: Path,
) -> None:
    """The agent's hub chain decides its tools/calls; once desk's copy of the hub's feed is
    marked due a sync (the authority's node out of reach at the mark's route), desk's
    standing for the agent holds no hub credential, and the session's credential source
    refuses too, saying why."""

    async def scene(net: MemNet) -> None:
        desk, peer = await _desk_and_agent(net)
        hub = net.authority.identifier
        source = PeerCredential(lambda: peer, desk.trust.standing, desk.policies)
        now = net.clock.now()
        assert source.current(now=now).authority == hub
        desk.node.wallet.store.mark_sync_due(hub.digest, "/tcp/away:4000", now)
        desk.trust.read_due()
        standing = desk.trust.standing(peer, now)
        assert standing.credentials == ()
        assert any("due a sync" in reason for reason in standing.dropped), standing.dropped
        with pytest.raises(CredentialError, match="due a sync"):
            source.current(now=now)

    run_memnet(scene, tmp_path)


def test_the_local_gates_credential_waits_for_a_due_feed_as_handing_it_out_does(
    tmp_path: Path,
) -> None:
    """A local identity `helper` holding desk's delegation: its gate decides with it; once
    desk's copy of the hub's feed is marked due a sync (out of reach), the node presents the
    chain to no peer, and the local gate refuses it too."""

    async def scene(net: MemNet) -> None:
        desk, _ = await _desk_and_agent(net)
        node, now = desk.node, net.clock.now()
        source = _helper_of(desk, now)
        hub = net.authority.identifier
        assert source.current(now=now).authority == hub
        node.wallet.store.mark_sync_due(hub.digest, "/tcp/away:4000", now)
        assert node.wallet.presentable("helper", now=now) == []
        with pytest.raises(CredentialError, match="due a sync"):
            source.current(now=now)

    run_memnet(scene, tmp_path)


def test_the_local_gate_refuses_an_identity_a_co_trusted_authority_revoked(
    tmp_path: Path,
) -> None:
    """desk is a member of the hub (whose bundle decides its tools) and of globex; globex
    revokes desk's identity for good (compromised). Every node that verified desk's globex
    chain refuses desk whatever chain it shows (docs/formats.md, "Whose word counts on an
    identity"); desk's own local gate must not go on deciding desk's tool calls with its hub
    chain."""

    async def scene(net: MemNet) -> None:
        desk, _ = await _desk_and_agent(net)
        _globex, authority, ticket = await globex_over_tcp(net)
        await desk.enroll(ticket, "desk")
        source = LocalCredential(desk.node, "desk", desk.policies)
        now = net.clock.now()
        assert source.current(now=now).authority == net.authority.identifier
        assert desk.identifier is not None
        authority.revoke_identity(desk.identifier, now=now, reason="compromised")
        assert await desk.sync_trusted_feed(authority.identifier) == 1
        with pytest.raises(CredentialError, match="revoked"):
            source.current(now=now)

    run_memnet(scene, tmp_path)
