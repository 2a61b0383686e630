"""Review 49a, revocation 1: `Authority.revoke` beside a node served in this process. A
revocation on this machine is heard at once by the daemons running the other nodes of the home
(`tell_local_nodes`, review 48c, revocation 2: `feed.sync`), but a node run by `serve` in the
very process that revoked was told nothing: it held its copy of the authority's feed as it
was, and admitted the revoked member until its next maintenance round (up to 30 s). Now every
node `serve` runs in this process that trusts the authority syncs its copy before the call
returns."""

from __future__ import annotations

import asyncio

import pytest

import troth
import troth.node.shown_identity
from tests.support.revocation import delegated_to_sub


async def _echo(caller: troth.Node, route: str) -> object:
    async with caller.connect(route, expect=None) as channel:
        return await channel.call("echo", "echo", "hi")


@pytest.mark.parametrize("what", ["credential", "identity"])
def test_a_node_served_here_refuses_what_the_authority_revoked_at_once(
    what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the member shows its credential even once revoked (tests.support.revocation)
    monkeypatch.setattr(troth.node.shown_identity, "revokes_a_link", lambda *args: False)
    with (
        troth.Node.open("hub") as hub,
        troth.Node.open("desk") as desk,
        troth.Node.open("agents") as agents,
    ):
        acme = hub.create_authority()
        desk.enroll(acme.ticket({"orders.access": "none"}))
        member = agents.enroll(acme.ticket({"orders.access": "read"}))

        async def scenario() -> None:
            async with desk.serve(listen=("127.0.0.1", 0)) as running:
                assert await _echo(agents, running.address) == "hi"
                if what == "credential":
                    acme.revoke(member, reason="left")
                else:
                    acme.revoke_identity(agents.identity, reason="left")
                with pytest.raises((troth.ChannelError, troth.Denied)) as refused:
                    await _echo(agents, running.address)
                assert "revoked" in str(refused.value)

        asyncio.run(scenario())


def test_a_node_served_here_refuses_a_link_a_delegator_revoked_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`Node.revoke` (a delegator, the authority on this machine) reaches the other nodes
    served in this process too, not only the revoker's own."""
    monkeypatch.setattr(troth.node.shown_identity, "revokes_a_link", lambda *args: False)
    with (
        troth.Node.open("hub") as hub,
        troth.Node.open("desk") as desk,
        troth.Node.open("agents") as agents,
        troth.Node.open("sub") as sub,
    ):
        acme = hub.create_authority()
        desk.enroll(acme.ticket({"orders.access": "none"}))
        chain = delegated_to_sub(acme, agents, sub)

        async def scenario() -> None:
            async with desk.serve(listen=("127.0.0.1", 0)) as running:
                assert await _echo(sub, running.address) == "hi"
                agents.revoke(chain, by=agents.identity, reason="done")
                with pytest.raises((troth.ChannelError, troth.Denied)) as refused:
                    await _echo(sub, running.address)
                assert "revoked" in str(refused.value)

        asyncio.run(scenario())
