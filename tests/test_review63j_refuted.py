"""Review 63j, attacks on the Python API that did not work (each test fails if the defence it
names breaks): a newcomer's program (an authority, two agent nodes, a caveated delegation, a
service call, a gated tool call, a leased secret, a trace proof, a revocation) attacked at each
step through `import troth` only."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
from pathlib import Path

import pytest

import troth
from tests.support.brokers import PAYMENTS
from tests.support.public_api import READ, Agents, acme_and_agents
from tests.test_api_secrets import SUPPORT_LEASES

LOOKUP = '@id("lookup") permit(principal, action == Action::"invoke:lookup", resource);'
TOOLS = {"lookup": {"type": "object", "properties": {"order": {"type": "string"}}}}


def test_a_caveat_context_cannot_set_now_nor_slip_a_value_cedar_cannot_hold() -> None:
    """`now` is the verifier's; an integer past Cedar's 64 bits, a float or None in the
    context leaves the caveat unevaluated (deny), never satisfied, never a crash."""
    with acme_and_agents() as world:
        chain = world.agents.delegate(
            world.support,
            to=world.sub,
            attributes=READ,
            ttl=600,
            purpose="x",
            caveats=["context.n < 10 && context.now < 100"],
        )
        verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.agents)
        with pytest.raises(troth.ArgumentError):
            verifier.verify(chain, presenter=world.sub, context={"n": 1, "now": 0})
        for n in (1 << 64, -(1 << 64), 1.5, None):
            with pytest.raises(troth.CredentialError) as refused:
                verifier.verify(chain, presenter=world.sub, context={"n": n})
            assert refused.value.reason is troth.CredentialFailure.CAVEAT_UNEVALUATED
        with pytest.raises(troth.CredentialError) as late:  # now is the verification time
            verifier.verify(chain, presenter=world.sub, context={"n": 1})
        assert late.value.reason is troth.CredentialFailure.CAVEAT_UNSATISFIED


def test_decide_with_a_credential_relabelled_to_another_holder_denies() -> None:
    """A `Credential` made by hand naming another holder is decided as presented by that
    holder: the chain says whose it is, and the gate denies."""
    with acme_and_agents() as world:
        bundle = world.hub.policies.sign(policies=LOOKUP, tools=TOOLS, revision=1)
        world.agents.policies.install(bundle)
        assert world.agents.policies.decide(world.member, "lookup", {}).allowed
        relabelled = dataclasses.replace(world.member, holder=world.sub.identifier)
        decision = world.agents.policies.decide(relabelled, "lookup", {})
        assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)
        # the reason reads (it said "the caller's credential is subject is not the ...")
        assert decision.reason == (
            "denied: the caller's credential: subject is not the presenting identity"
        )


def test_a_delegators_revocation_is_refused_by_every_feed_source_and_the_gates() -> None:
    """`Node.revoke(chain, by=delegator)` returns: a verifier fed by the delegator's node, the
    authority or both refuses it, and the gates deny the holder's call."""
    with acme_and_agents() as world:
        bundle = world.hub.policies.sign(policies=LOOKUP, tools=TOOLS, revision=1)
        world.agents.policies.install(bundle)
        chain = world.agents.delegate(
            world.support, to=world.sub, attributes=READ, ttl=600, purpose="x"
        )
        assert world.agents.policies.decide(chain, "lookup", {}).allowed
        world.agents.revoke(chain, by=world.support, reason="done")
        sources: list[troth.Node | troth.Authority | list[troth.Node | troth.Authority]] = [
            world.agents,
            world.acme,
            [world.acme, world.agents],
        ]
        for feeds in sources:
            verifier = troth.Verifier(trust=[world.acme.identifier], feeds=feeds)
            with pytest.raises(troth.CredentialError) as refused:
                verifier.verify(chain, presenter=world.sub)
            assert refused.value.reason is troth.CredentialFailure.REVOKED
        decision = world.agents.policies.decide(chain, "lookup", {})
        assert (decision.allowed, decision.outcome) == (False, troth.Outcome.CREDENTIAL)


def test_another_identity_cannot_renew_or_give_back_a_lease_by_its_id() -> None:
    """A lease id is no bearer token: another identity of the same node, a member too,
    presenting it is told of no such lease, and the lease lives on."""
    with acme_and_agents() as world:
        world.hub.secrets.put("payments", engine="token", config=PAYMENTS)
        world.hub.policies.publish(policies=SUPPORT_LEASES, tools={}, revision=1)
        world.agents.enroll(world.acme.ticket(READ), identity=world.sub)
        secrets = world.agents.secrets

        async def scene() -> list[str]:
            async with world.hub.serve(listen=("127.0.0.1", 0)) as running:
                at, hub = running.address, running.identifier
                issued = await secrets.lease(
                    "payments", holder="support", broker=at, expect=hub, scope=["refunds"]
                )
                lease_id = issued.lease_id.text()
                for act in (secrets.renew, secrets.give_back):
                    with pytest.raises(troth.SecretError) as refused:
                        await act(lease_id, holder="sub", broker=at, expect=hub)
                    assert refused.value.reason is troth.SecretFailure.NO_SUCH_LEASE
                held = await secrets.leases(holder="support", broker=at, expect=hub)
                return [lease.state.name for lease in held]

        assert asyncio.run(scene()) == ["ACTIVE"]


def test_a_handlers_answer_cbor_cannot_hold_is_a_remote_error_not_a_hang() -> None:
    """A handler returning a float, a set or a bignum: the caller gets RemoteError at once."""
    odd = troth.Service("odd")
    answers = {"float": 1.5, "set": {1, 2}, "bignum": 1 << 70}
    for name, value in answers.items():

        async def answer(request: troth.Request, value: object = value) -> object:
            return value

        odd.method(name, allow=troth.AnyAuthenticated())(answer)

    async def scene(world: Agents) -> list[str]:
        seen = []
        async with world.hub.serve(listen=("127.0.0.1", 0), services=[odd]) as running:
            at = running.address
            async with world.agents.connect(at, expect=running.identifier) as channel:
                for name in answers:
                    with pytest.raises(troth.RemoteError) as failed:
                        await channel.call("odd", name, None, timeout=5)
                    seen.append(str(failed.value))
        return seen

    with acme_and_agents() as world:
        assert all("cannot encode" in said for said in asyncio.run(scene(world)))


def test_a_proof_bundle_edited_outside_its_signature_is_refused(tmp_path: Path) -> None:
    """The readable copy of a proved record, a disclosed value, the index: each edit is a
    TraceError, on the node that proved it and on another node alike."""
    with acme_and_agents() as world:
        world.agents.delegate(world.support, to=world.sub, attributes=READ, ttl=600, purpose="x")
        traces = world.agents.traces
        proof = json.loads(traces.prove(traces.show()[0]["id"]))
        edits = []
        timed = copy.deepcopy(proof)
        timed["record"]["time"] = 1
        edits.append(timed)
        disclosed = copy.deepcopy(proof)
        disclosed["disclosures"]["args"]["value"]["purpose"] = "something else"
        edits.append(disclosed)
        moved = copy.deepcopy(proof)
        moved["index"] = 5
        edits.append(moved)
        file = tmp_path / "proof.json"
        for edited in edits:
            file.write_text(json.dumps(edited))
            for node in (world.agents, world.hub):
                with pytest.raises(troth.TraceError):
                    node.traces.verify(file=file)
        file.write_text(json.dumps(proof))
        assert world.hub.traces.verify(file=file).status == "unanchored"
