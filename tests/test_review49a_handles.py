"""Review 49a, handles 2: one node, two handles in one process. The `Node.revoke` of a second
`Node.open(name)` of a node served here (outside `serve`: the usual call of an admin path that
opens the node for one revocation) told only a daemon, never the runtime serving the node in
this very process, which went on admitting the revoked link until its next feed refresh
(docs/python.md: "when it returns, the node, and a daemon running it, refuse the link"). Now a
revocation through any handle reaches every runtime of the node in this process."""

from __future__ import annotations

import asyncio

import pytest

import troth
import troth.node.shown_identity
from tests.support.revocation import delegated_to_sub


async def _echo_as_sub(route: str) -> object:
    async with troth.Node.open("sub").connect(route, expect=None) as channel:
        return await channel.call("echo", "echo", "hi")


def test_a_revocation_through_another_handle_reaches_the_running_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # sub shows its chain even once revoked (tests.support.revocation.echo_as_sub)
    monkeypatch.setattr(troth.node.shown_identity, "revokes_a_link", lambda *args: False)
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as served:
        acme = hub.create_authority()
        with troth.Node.open("sub") as sub:
            chain = delegated_to_sub(acme, served, sub)

        async def scenario() -> None:
            async with served.serve(listen=("127.0.0.1", 0)) as running:
                route = running.address
                assert await _echo_as_sub(route) == "hi"
                with troth.Node.open("agents") as admin:  # another handle of the same node
                    admin.revoke(chain, by=admin.identity, reason="done")
                with pytest.raises(troth.ChannelError) as refused:
                    await _echo_as_sub(route)
                assert f"revoked (credential {chain.id.hex()})" in str(refused.value)

        asyncio.run(scenario())


def test_a_second_handle_still_runs_the_node_beside_the_first() -> None:
    """Not refused: `connect`, `call` and `enroll` over the network run the node for their
    block, and a second handle's must keep working while the first serves."""

    async def both() -> str:
        with troth.Node.open("agents") as first, troth.Node.open("agents") as second:
            async with first.serve() as one, second.serve() as two:
                return f"{one.identifier} {two.identifier}"

    one, two = asyncio.run(both()).split()
    assert one == two
