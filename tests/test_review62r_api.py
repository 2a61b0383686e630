"""Review 62r: the Python API's runtime per `Node` handle (62j) and the lead's close fixes.

api 1: a `Node` handle closed inside its serve block leaves its running node registered for
the process (`runtimes_here`) until the block ends, refusing every request. Another, open handle
of the node that revoked a link then told that closed runtime too (`learn_held` on the closed
store): its `revoke` raised the closed handle's StorageError ("node.db is closed") after the
revocation was taken and recorded, not the result nor a StorageError saying the link is revoked,
and the runtimes after the closed one in the list were not told. Fixed: `runtimes_here` (and
`sync_runtimes_here`) skip a running node whose handle was closed.
api 2 (the same fix): `Secrets.revoke_holder` through an open handle, while a closed handle of
the node served, signed its revocations with the closed runtime's trace recorder (the first
of `runtimes_here`): the leases were revoked, and no "revoke" record reached the trace log.
"""

from __future__ import annotations

import asyncio

import pytest

import troth
from tests.support.brokers import PAYMENTS
from tests.support.public_api import READ, acme_and_agents
from tests.test_api_secrets import SUPPORT_LEASES


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


def test_api2_revoke_holder_through_an_open_handle_is_signed_while_a_closed_one_serves() -> None:
    async def scene(world: troth.Node, agents: troth.Node) -> list[object]:
        async with world.serve(listen=("127.0.0.1", 0)) as running:
            at, hub = running.address, running.identifier
            await agents.secrets.lease(
                "payments", holder="support", broker=at, expect=hub, scope=["refunds"], ttl=60
            )
            world.close()
            with troth.Node.open("acme") as again:
                (revoked,) = again.secrets.revoke_holder(agents.identities.get("support"))
                assert revoked.state.name == "REVOKED"
                return [r["decision"] for r in again.traces.show() if r["kind"] == "lease"]

    with acme_and_agents() as world:
        world.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        world.hub.policies.publish(policies=SUPPORT_LEASES, tools={}, revision=1)
        assert asyncio.run(scene(world.hub, world.agents))[-1] == "revoked"
