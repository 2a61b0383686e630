"""`Node.policies`, the public API's face of a node's gates (docs/python.md, "Gates"): a bundle
signed and installed as the authority, installed on a node that receives it, shown, and one
tool call decided under it (deny by default), through the library calls the CLI makes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import troth
from tests.support.cli import run_json
from tests.support.gates import POLICIES
from tests.support.policy_world import TOOLS, WRITE, writer_world
from tests.support.public_api import Agents


@pytest.fixture
def world() -> Iterator[Agents]:
    """acme's hub with revision 1 of POLICIES, agents holding it too; `writer` holding read
    and write (`support`, read only; `sub`, nothing)."""
    with writer_world() as made:
        yield made


def test_publish_show_and_install_on_a_receiving_node(world: Agents) -> None:
    (held,) = world.agents.policies.show()
    assert (held.authority, held.signer, held.revision) == (world.acme.identifier,) * 2 + (1,)
    assert held.in_force
    assert held.not_in_force is None
    assert held.tools == ("export_customers", "lookup_order", "refund")
    assert set(held.policies) == {"lookup", "refund", "refund-cap", "export"}
    again = world.agents.policies.install(
        world.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=2)
    )
    assert again.revision == 2
    assert world.agents.policies.show() == [again]
    published = world.hub.policies.publish(policies=POLICIES, tools=TOOLS, revision=3)
    assert [b.revision for b in world.hub.policies.show()] == [published.revision] == [3]


def test_decide_allows_forbids_and_denies_by_default(world: Agents) -> None:
    decide = world.agents.policies.decide
    allowed = decide(
        world.agents.identities.get("writer"), "refund", {"order_id": "4471", "amount": 20}
    )
    assert (allowed.allowed, allowed.outcome, allowed.policies) == (
        True,
        troth.Outcome.ALLOWED,
        ("refund",),
    )
    assert allowed.revision == 1
    capped = decide("writer", "refund", {"order_id": "4471", "amount": 5000})
    assert (capped.allowed, capped.outcome, capped.policies) == (
        False,
        troth.Outcome.FORBIDDEN,
        ("refund-cap",),
    )
    unknown = decide("writer", "drop_database", {})
    assert (unknown.allowed, unknown.outcome) == (False, troth.Outcome.UNKNOWN_REQUEST)
    no_permit = decide("writer", "export_customers", {})  # for troth.role=dpo only
    assert (no_permit.allowed, no_permit.outcome) == (False, troth.Outcome.NO_PERMIT)
    schema = decide("writer", "refund", {"order_id": 4471, "amount": "all"})
    assert (schema.allowed, schema.outcome) == (False, troth.Outcome.ARGUMENTS)
    nothing = decide(world.sub, "lookup_order", {"order_id": "1"})  # holds no credential
    assert (nothing.allowed, nothing.outcome) == (False, troth.Outcome.CREDENTIAL)


def test_decide_for_a_presented_credential_and_after_its_revocation(world: Agents) -> None:
    (write,) = world.agents.credentials("writer")
    decision = world.hub.policies.decide(write, "refund", {"order_id": "4471", "amount": 20})
    assert decision.allowed
    assert decision.policies == ("refund",)
    reader = world.hub.policies.decide(world.member, "refund", {"order_id": "1", "amount": 1})
    assert (reader.allowed, reader.outcome) == (False, troth.Outcome.NO_PERMIT)
    world.acme.revoke(write, reason="left")
    revoked = world.hub.policies.decide(write, "refund", {"order_id": "4471", "amount": 20})
    assert (revoked.allowed, revoked.outcome) == (False, troth.Outcome.CREDENTIAL)
    assert "revoked" in revoked.reason


def test_a_node_holding_no_bundle_denies(world: Agents) -> None:
    with troth.Node.open("bare") as bare:
        bare.identities.create("agent")
        bare.enroll(world.acme.ticket(WRITE), identity="agent")
        decision = bare.policies.decide("agent", "lookup_order", {"order_id": "1"})
    assert (decision.allowed, decision.outcome) == (False, troth.Outcome.NOT_IN_FORCE)
    assert bare_show_is_empty()


def bare_show_is_empty() -> bool:
    with troth.Node.open("bare") as bare:
        return bare.policies.show() == []


def test_a_tampered_bundle_and_a_rollback_are_refused_typed(world: Agents) -> None:
    data = bytearray(world.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=2))
    data[-5] ^= 1
    with pytest.raises(troth.PolicyError) as tampered:
        world.agents.policies.install(bytes(data))
    assert tampered.value.reason is troth.PolicyFailure.BAD_SIGNATURE
    with pytest.raises(troth.PolicyError) as same:  # the node holds revision 1 already
        world.hub.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
    assert same.value.reason is troth.PolicyFailure.ROLLBACK
    with pytest.raises(troth.PolicyError) as invalid:
        world.hub.policies.sign(policies="permit(principal, action, resource", tools={}, revision=5)
    assert invalid.value.reason is troth.PolicyFailure.POLICIES_INVALID
    assert [b.revision for b in world.agents.policies.show()] == [1]


def test_a_bundle_of_an_authority_the_node_does_not_trust_is_refused(world: Agents) -> None:
    with troth.Node.open("other") as other:
        other.create_authority()
        data = other.policies.sign(policies=POLICIES, tools=TOOLS, revision=1)
    with pytest.raises(troth.PolicyError) as refused:
        world.agents.policies.install(data)
    assert refused.value.reason is troth.PolicyFailure.UNTRUSTED_AUTHORITY


def test_the_cli_shows_what_the_api_installed(world: Agents) -> None:
    shown = run_json("policy", "show", "--node", "agents")
    (held,) = world.agents.policies.show()
    assert [(r["revision"], r["digest"]) for r in shown] == [(1, held.digest)]


def test_arguments_of_the_wrong_kind_are_argument_errors(world: Agents) -> None:
    policies = world.agents.policies
    for call in (
        lambda: policies.decide(42, "refund"),  # type: ignore[arg-type]
        lambda: policies.decide("writer", 7),  # type: ignore[arg-type]
        lambda: policies.decide("writer", "refund", ["not", "a", "map"]),  # type: ignore[arg-type]
        lambda: policies.decide("writer", "refund", {"when": object()}),
        lambda: policies.install("not bytes"),  # type: ignore[arg-type]
        lambda: policies.sign(policies=POLICIES, tools={"refund": 3}, revision=9),
        lambda: policies.sign(policies=POLICIES, tools=TOOLS, revision=0),
    ):
        with pytest.raises(troth.ArgumentError):
            call()
    with pytest.raises(troth.NotFound):  # agents hosts no authority: say which
        policies.sign(policies=POLICIES, tools=TOOLS, revision=2)


def test_resign_after_the_authority_rotated(world: Agents) -> None:
    (held,) = world.hub.policies.show()
    world.hub.identities.rotate(world.hub.identity)
    (stale,) = world.hub.policies.show()
    assert (stale.revision, stale.in_force) == (1, False)
    with pytest.raises(troth.PolicyError):  # only the bundle whose digest was checked
        world.hub.policies.resign("00" * 32)
    again = world.hub.policies.resign(held.digest)
    assert (again.revision, again.in_force, again.policies) == (2, True, held.policies)
