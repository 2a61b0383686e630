"""Review 62r: the Python API's runtime per `Node` handle (62j) and the lead's close fixes.

api 1: a `Node` handle closed inside its serve block leaves its running node registered for
the process (`runtimes_here`) until the block ends, refusing every request. Another, open handle
of the node that revoked a link then told that closed runtime too (`learn_held` on the closed
store): its `revoke` raised the closed handle's StorageError ("node.db is closed") after the
revocation was taken and recorded, not the result nor a StorageError saying the link is revoked,
and the runtimes after the closed one in the list were not told. Fixed: `runtimes_here` (and
`sync_runtimes_here`) skip a running node whose handle was closed.
"""

from __future__ import annotations

import asyncio

import pytest

import troth
from tests.support.public_api import READ, acme_and_agents


def test_api1_a_revocation_through_an_open_handle_skips_a_closed_handle_serving() -> None:
    async def scene(agents: troth.Node, delegated: troth.Credential) -> int:
        async with agents.serve():
            agents.close()  # its running node refuses every request until the block ends
            with troth.Node.open("agents") as again:
                return again.revoke(delegated, by="support", reason="done")

    with acme_and_agents() as world:
        agents = world.agents
        delegated = agents.delegate(
            world.support, to=world.sub, attributes=READ, ttl=600, purpose="x"
        )
        assert asyncio.run(scene(agents, delegated)) >= 0
    with troth.Node.open("agents") as agents:  # the revocation stands
        verifier = troth.Verifier(trust=[world.acme.identifier], feeds=agents)
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(delegated, presenter=world.sub)
        assert refused.value.reason is troth.CredentialFailure.REVOKED
