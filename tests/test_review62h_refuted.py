"""Review 62h: attacks on the Python API surface that the API withstood (each would fail if
the defence it meets broke)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import pickle
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import troth
from tests.support.gates import POLICIES
from tests.support.policy_world import TOOLS
from tests.support.public_api import READ, Agents, acme_and_agents
from troth.clock import FixedClock

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def world() -> Iterator[Agents]:
    with acme_and_agents() as made:
        yield made


def _mutated(data: bytes, at: int, how: int, byte: int) -> bytes:
    """`data` with one byte flipped, cut, or one inserted (at `at`, modulo its length)."""
    at %= len(data)
    if how == 0:
        return data[:at] + bytes([data[at] ^ (byte or 1)]) + data[at + 1 :]
    if how == 1:
        return data[:at]
    return data[:at] + bytes([byte]) + data[at:]


MUTATION = (st.integers(0, 1 << 20), st.integers(0, 2), st.integers(0, 255))


def test_a_verified_credential_is_not_made_by_replace_and_a_copy_stays_the_same(
    world: Agents,
) -> None:
    verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.acme)
    verified = verifier.verify(world.member, presenter=world.support)
    wider = troth.Attributes({"orders.access": ["read", "write"]})
    with pytest.raises(troth.ArgumentError):
        dataclasses.replace(verified, attributes=wider)
    for same in (copy.copy(verified), copy.deepcopy(verified)):
        assert same == verified
        assert same.attributes == troth.Attributes(READ)
    # never pickled: a pickle kept it "verified" across processes and past a revocation, and
    # a hand-made one forged it (review 64n, api 4)
    with pytest.raises(TypeError, match="cannot pickle a VerifiedCredential"):
        pickle.dumps(verified)


def test_a_hand_widened_credential_verifies_as_its_chain_says(world: Agents) -> None:
    wider = troth.Attributes({"orders.access": ["read", "write"]})
    forged = dataclasses.replace(world.member, attributes=wider, holder=world.sub.identifier)
    verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.agents)
    assert verifier.verify(forged, presenter=world.support).attributes == troth.Attributes(READ)
    with pytest.raises(troth.CredentialError):
        verifier.verify(forged, presenter=world.sub)


def test_a_hand_made_credential_revokes_no_link_of_another_chain_nor_authority(
    world: Agents,
) -> None:
    to_sub = world.agents.delegate(
        world.support, to=world.sub, attributes=READ, ttl=600, purpose="look up"
    )
    with troth.Node.open("other") as other_hub:
        other = other_hub.create_authority()
        attempts = {
            "the member link, named through the delegation": dataclasses.replace(
                to_sub, id=world.member.id
            ),
            "its link, rooted at another authority": dataclasses.replace(
                to_sub, authority=other.identifier
            ),
        }
        for what, forged in attempts.items():
            with pytest.raises(troth.AuthorityError):
                world.agents.revoke(forged, by=world.support)
            print(what, "refused")
    verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.acme)
    assert verifier.verify(to_sub, presenter=world.sub).attributes == troth.Attributes(READ)
    assert verifier.verify(world.member, presenter=world.support)


def test_a_reused_verifier_caches_no_answer_past_expiry_nor_revocation() -> None:
    clock = FixedClock(1_790_000_000)
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority(credential_ttl=3600)
        support = agents.identities.create("support")
        sub = agents.identities.create("sub")
        agents.enroll(acme.ticket(READ), identity=support)
        short = agents.delegate(support, to=sub, attributes=READ, ttl=60, purpose="short")
        revoked = agents.delegate(support, to=sub, attributes=READ, ttl=600, purpose="revoked")
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme, clock=clock)
        for chain in (short, revoked):
            verifier.verify(chain, presenter=sub)
        acme.revoke(revoked)
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(revoked, presenter=sub)
        assert refused.value.reason is troth.CredentialFailure.REVOKED
        clock.advance(60 + 300 + 1)  # past the link and the clock skew allowed
        with pytest.raises(troth.CredentialError) as expired:
            verifier.verify(short, presenter=sub)
        assert expired.value.reason is troth.CredentialFailure.EXPIRED


AMOUNTS = {
    "float": 50.0,
    "bool": True,
    "text": "50",
    "past 64 bits": 2**70,
    "below 64 bits": -(2**63) - 1,
    "null": None,
    "list": [50],
}
"""Amounts of other types than a Cedar long, in a context."""


def test_a_context_value_of_another_type_never_satisfies_a_caveat(world: Agents) -> None:
    capped = world.agents.delegate(
        world.support,
        to=world.sub,
        attributes=READ,
        ttl=600,
        purpose="small refunds",
        caveats=["!(context.amount > 100)"],  # true for any amount it cannot compare
    )
    verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.acme)
    assert verifier.verify(capped, presenter=world.sub, context={"amount": 50})
    for what, amount in AMOUNTS.items():
        with pytest.raises(troth.CredentialError) as refused:
            verifier.verify(capped, presenter=world.sub, context={"amount": amount})
        assert refused.value.reason is troth.CredentialFailure.CAVEAT_UNEVALUATED, what


def test_mutated_chains_bundles_and_tickets_raise_only_troth_errors(world: Agents) -> None:
    to_sub = world.agents.delegate(
        world.support,
        to=world.sub,
        attributes=READ,
        ttl=600,
        purpose="x",
        caveats=['context.case == "7"'],
    )
    bundle = world.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
    ticket = world.acme.ticket(READ).encode()
    verifier = troth.Verifier(trust=[world.acme.identifier], feeds=[world.agents, world.acme])

    @FUZZ
    @given(*MUTATION)
    def attack(at: int, how: int, byte: int) -> None:
        chain = _mutated(to_sub.chain, at, how, byte)
        text = _mutated(ticket, at, how, byte).decode("utf-8", "replace")
        for call in (
            lambda: verifier.verify(chain, presenter=world.sub, context={"case": "7"}),
            lambda: world.agents.hold(world.sub, chain),
            lambda: world.agents.policies.install(_mutated(bundle, at, how, byte)),
            lambda: world.agents.enroll(text, identity=world.sub),
        ):
            with contextlib.suppress(troth.TrothError):
                call()

    attack()


@FUZZ
@given(st.binary(max_size=80), st.text(max_size=80))
def test_public_parsers_raise_only_troth_errors(data: bytes, text: str) -> None:
    for call in (
        lambda: troth.Attributes.from_cbor(data),
        lambda: troth.Identifier(data),
        lambda: troth.Identifier.parse(text),
        lambda: troth.Identifier.parse("T" + text),
        lambda: troth.Identifier.parse("did:troth:" + text),
        lambda: troth.Attributes.from_assignments([text]),
    ):
        with contextlib.suppress(troth.TrothError):
            call()


def test_an_authority_kept_across_its_rotation_by_another_handle_stays_sound(
    world: Agents,
) -> None:
    with troth.Node.open("acme") as again:
        again.identities.rotate("acme")
    verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.acme)
    with pytest.raises(troth.CredentialError) as superseded:
        verifier.verify(world.member, presenter=world.support)  # signed by the retired key
    assert superseded.value.reason is troth.CredentialFailure.SUPERSEDED
    fresh = world.agents.enroll(world.acme.ticket(READ), identity=world.sub)  # the kept object
    assert verifier.verify(fresh, presenter=world.sub).attributes == troth.Attributes(READ)
    world.acme.revoke(fresh)
    with pytest.raises(troth.CredentialError) as revoked:
        verifier.verify(fresh, presenter=world.sub)
    assert revoked.value.reason is troth.CredentialFailure.REVOKED


def test_one_node_used_from_two_threads_keeps_a_sound_trace_log(world: Agents) -> None:
    verifier = troth.Verifier(trust=[world.acme.identifier], feeds=world.agents)
    failed: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(2):
                chain = world.agents.delegate(
                    world.support, to=world.sub, attributes=READ, ttl=60, purpose=f"{n}.{i}"
                )
                verifier.verify(chain, presenter=world.sub)
        except BaseException as exc:  # reported by the assertion below
            failed.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert world.agents.traces.verify().records == 4
