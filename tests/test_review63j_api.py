"""Review 63j: the Python API as a security engineer adopting troth meets it, following only
docs/python.md, docs/policy.md, docs/secrets.md and docs/traces.md (an authority, two agent
nodes, an enrollment, a delegation with a caveat, a channel and a service call, a gated tool
call, a leased secret, a trace log verified, a revocation).

api 1: `Secrets.lease` and `Secrets.put` took any text as a secret's name and `lease` any text
as a scope: the guide promises an ArgumentError, before anything is done, for "a name not of a
name's form", and they raised the broker's `SecretError` BAD_REQUEST instead (no ValueError, no
`parameter`), `lease` only after its node had started to run for the call; a scope with a
space went over the network, to be refused by the broker a round trip later (or, the broker
unreachable, a `RoutingError` that said nothing of the scope). Fixed: both are checked as the
broker checks them, an ArgumentError naming the parameter, before the node runs.
api 2: `Node.call`, documented as the synchronous `connect` + `Channel.call`, dropped
`Channel.call`'s `timeout`: every synchronous call gave up after 10 s, a slower method could not
be called from a script, and a script could not wait less. Fixed: `Node.call(..., timeout=)`,
checked as `Channel.call` checks it, before anything is done.
api 3: `Policies.sign` (and `publish`) took a `ttl` up to `limits.MAX_TTL` (2^62 s) when a
bundle lives at most `limits.MAX_POLICY_BUNDLE_TTL` (90 days): a ttl past it, which the guide
promises is an ArgumentError ("a ttl ... out of range"), reached the gates' signing and was
refused as `PolicyError` EXPIRED, "the bundle expired", of a bundle not yet made. Fixed: checked
against the bundle's limit, an ArgumentError naming it, before anything is signed.
api 4: the API let through arguments past the limits of the layers beneath, whose errors then
spoke of something else: a revocation `reason` over `limits.MAX_REVOCATION_REASON` was, from
`Node.revoke`, an AuthorityError "revoke takes [id, chain, reason]" (as if the API had built a
bad request), from `Authority.revoke` an AuthorityError; a delegation `purpose` over
`MAX_PURPOSE_TEXT` or more than `MAX_CAVEATS` caveats, a CredentialError "link 1: malformed" of
a link not yet made; a ticket's `at` that is no route nor `node:NAME`, an AuthorityError
REQUEST_INVALID. Fixed: each an ArgumentError naming the parameter and its limit, before
anything is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import troth
from tests.support.brokers import PAYMENTS
from tests.support.public_api import READ, acme_and_agents
from tests.test_api_network import LOOPBACK, served_in_a_thread
from troth import limits

DEAD_BROKER = "/tcp/127.0.0.1:1"
"""A route nothing listens at: a check made before the node runs never reaches it."""


def test_api1_a_malformed_secret_name_or_scope_is_an_argument_error_before_anything() -> None:
    with acme_and_agents() as world:
        lease = world.agents.secrets.lease
        for secret, scope, parameter in (
            ("Pay Ments", None, "secret"),
            ("x" * 65, None, "secret"),
            ("payments", ["refunds", "two words"], "scope"),
            ("payments", [f"s{n}" for n in range(1000)], "scope"),
        ):
            with pytest.raises(troth.ArgumentError) as refused:
                asyncio.run(lease(secret, holder="support", broker=DEAD_BROKER, scope=scope))
            assert refused.value.parameter == parameter
            assert isinstance(refused.value, ValueError)
        with pytest.raises(troth.ArgumentError) as stored:
            world.hub.secrets.put("Pay Ments", engine="token", config=PAYMENTS)
        assert stored.value.parameter == "name"
        assert "secret name" in str(stored.value)


def test_api2_node_call_takes_the_channel_calls_timeout() -> None:
    slow = troth.Service("slow")

    @slow.method("wait", allow=troth.AnyAuthenticated())
    async def wait(request: troth.Request) -> str:
        await asyncio.sleep(float(request.arguments))
        return "done"

    with acme_and_agents() as world:
        agents = world.agents
        agents.enroll(world.acme.ticket({"orders.access": "read"}))
        with pytest.raises(troth.ArgumentError) as refused:
            agents.call(DEAD_BROKER, "slow", "wait", 0, expect=None, timeout=0)
        assert refused.value.parameter == "timeout"
        with served_in_a_thread(world.hub, listen=LOOPBACK, services=[slow]) as running:
            at, hub = running.address, running.identifier
            assert agents.call(at, "slow", "wait", "0.01", expect=hub, timeout=5) == "done"
            with pytest.raises(troth.RoutingError, match="no answer"):
                agents.call(at, "slow", "wait", "5", expect=hub, timeout=0.2)


POLICIES = '@id("all") permit(principal, action, resource);'


def test_api3_a_bundle_ttl_past_the_bundle_limit_is_an_argument_error() -> None:
    with acme_and_agents() as world:
        policies = world.hub.policies
        for ttl in (limits.MAX_POLICY_BUNDLE_TTL + 1, limits.MAX_TTL):
            for sign in (policies.sign, policies.publish):
                with pytest.raises(troth.ArgumentError) as refused:
                    sign(policies=POLICIES, tools={}, revision=1, ttl=ttl)
                assert refused.value.parameter == "ttl"
                assert str(limits.MAX_POLICY_BUNDLE_TTL) in str(refused.value)
        assert policies.show() == []  # nothing signed, nothing installed
        assert policies.publish(policies=POLICIES, tools={}, revision=1, ttl=3600).in_force


def test_api4_arguments_past_the_layers_limits_are_argument_errors() -> None:
    long_reason = "r" * (limits.MAX_REVOCATION_REASON + 1)
    with acme_and_agents() as world:
        agents, acme = world.agents, world.acme
        chain = agents.delegate(world.support, to=world.sub, attributes=READ, ttl=60, purpose="x")
        calls: dict[str, list[Callable[[], object]]] = {
            "reason": [
                lambda: agents.revoke(chain, by=world.support, reason=long_reason),
                lambda: acme.revoke(world.member, reason=long_reason),
                lambda: acme.revoke_identity(world.sub, reason=long_reason),
            ],
            "purpose": [
                lambda: agents.delegate(
                    world.support, to=world.sub, attributes=READ, ttl=60, purpose="p" * 257
                )
            ],
            "caveats": [
                lambda: agents.delegate(
                    world.support,
                    to=world.sub,
                    attributes=READ,
                    ttl=60,
                    purpose="x",
                    caveats=["true"] * (limits.MAX_CAVEATS + 1),
                )
            ],
            "at": [lambda: acme.ticket(READ, at="nowhere")],
        }
        for parameter, refused_calls in calls.items():
            for call in refused_calls:
                with pytest.raises(troth.ArgumentError) as refused:
                    call()
                assert refused.value.parameter == parameter
        verifier = troth.Verifier(trust=[acme.identifier], feeds=agents)  # nothing revoked
        assert verifier.verify(chain, presenter=world.sub).actor == world.sub.identifier
        assert [tree["kind"] for tree in agents.traces.show()] == ["delegation"]
