"""Review 34b, presented 1, 2 and 3.

1. a node shows every unexpired chain it holds on the channels it
opens as itself and in its in-band refreshes (`NodeRuntime.channel_identity`:
`CredentialWallet.presentable`), a revoked one too, though a peer refuses a channel that
presents a revoked chain of a root it trusts (docs/formats.md, "Whose word counts on an
identity": deny when in doubt). Only the channels opened as another local identity left the
revoked ones out (`_shown_as`). So the revocation of one delegation a node holds — its
delegator cutting the link, as `troth revoke link` is meant to: "descendants die, siblings
live" — cut the node off from every node trusting that authority, its own member credential
and every other delegation with it, until the revoked one expired. A member delegating to an
agent, then revoking the link, took the agent off the network at will.

Was a strict xfail until the node's channel identity leaves out the chains a feed it holds
revokes a link of (`NodeRuntime.channel_identity`, as `_shown_as` did).

2. the same with a chain one of whose issuers rotated since it signed its link: its authority's
feed supersedes the history the chain carries (`superseded history`), every peer refuses a
channel showing it, and the node still showed it. A delegator rotating its key, as it should
now and then, cut off every node holding a delegation of its until each expired.

Was a strict xfail until the node's channel identity also leaves out the chains in which a feed
it holds supersedes an issuer's history (`troth.credentials.wallet.supersedes_an_issuer`).

3. the same with a chain one of whose identities the authority revoked (`troth revoke
identity`: a compromised delegator): the node's filter of 1 looked at the links' own hashes
only (`revokes_a_link`), so every node holding a delegation of the revoked member was cut off.

Was a strict xfail until `revokes_a_link` counts a link whose issuer's or subject's identity the
feed revokes, as every verifier does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from troth.credentials import Attributes, CredentialChain
from troth.node.runtime import NodeRuntime

Cut = Callable[[MemNet, NodeRuntime, bytes, int], Awaitable[None]]
"""What makes the delegation n holds dead: (net, m, the chain, now)."""


def _still_admitted_after(tmp_path: Path, cut: Cut) -> None:
    """n (a member) holds a delegation from m (a member) and shows it; `cut` kills that
    delegation. n, whose feed says so, opens a new channel to the hub: it is admitted, as the
    member it still is."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        n = await net.member("n")
        m = await net.member("m")
        now = net.clock.now()
        chain = m.node.wallet.delegate(
            "m",
            to=net.identifier(n),
            attributes=Attributes({"agents.team": "support"}),
            now=now,
            ttl=600,
            purpose="one task",
        )
        n.node.wallet.hold("n", chain, now=now)
        await n.reload()  # n shows it from now on
        assert await n.send_message(f"{HUB}/service/echo", "held") == "held"

        await cut(net, m, chain, now)
        await hub.refresh_feeds()
        await n.refresh_feeds()  # n's feed says the delegation is dead
        for end in list(n.channels.ends.values()):
            await end.close()
        await n.reload()
        assert await n.send_message(f"{HUB}/service/echo", "still a member") == "still a member"

    run_memnet(test, tmp_path / "home", budget=60)


def test_a_revoked_delegation_held_does_not_cut_the_node_off(tmp_path: Path) -> None:
    """Presented 1: m's authority revokes the link."""

    async def cut(net: MemNet, m: NodeRuntime, chain: bytes, now: int) -> None:
        link = CredentialChain.decode(chain).credentials[-1].hash
        net.authority.revoke_credential(link, now=now, reason="task done")

    _still_admitted_after(tmp_path, cut)


def test_a_delegation_from_a_rotated_delegator_does_not_cut_the_node_off(
    tmp_path: Path,
) -> None:
    """Presented 2: m rotates its identity and announces it, so the authority's feed
    supersedes the history n's chain carries for m."""

    async def cut(net: MemNet, m: NodeRuntime, chain: bytes, now: int) -> None:
        m.node.identities.rotate("m", now=now)
        (announced,) = await m.announce_rotations()
        assert announced["announced"]

    _still_admitted_after(tmp_path, cut)


def test_a_delegation_from_a_revoked_identity_does_not_cut_the_node_off(tmp_path: Path) -> None:
    """Presented 3: the authority revokes m's identity."""

    async def cut(net: MemNet, m: NodeRuntime, chain: bytes, now: int) -> None:
        net.authority.revoke_identity(net.identifier(m), now=now, reason="compromised")

    _still_admitted_after(tmp_path, cut)
