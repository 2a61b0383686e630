"""Review 75f, delegation: chains at the node's access decision and the paths that judge them
again (the Cedar decision point holding a verified credential)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import troth
from tests.support.cli import run_json
from tests.support.gates import T, make_world
from troth.clock import FixedClock
from troth.errors import CredentialError, CredentialFailure
from troth.gates import ToolCall

DAY = 86_400
LOOKUP = ToolCall("lookup_order", {"order_id": "o1"})


def test_a_held_credential_whose_issuer_key_expired_is_denied_as_the_verifier_refuses_it() -> None:
    """75f delegation 1: `DecisionPoint` re-checks a held `VerifiedCredential` at each
    decision (its window, the feed's revocations and supersessions: "what ChainVerifier.verify
    checks ... for a credential held since") but not the issuer keys' validity: once the
    delegator's primary key is past its `valid_until` (its signing key's attestation, 30 days
    by default, is not bounded by it), `ChainVerifier.verify` refuses the chain
    (`ISSUER_INVALID`, "an issuer's current key has expired") while the decision point holding
    the credential verified before still allowed its tool calls."""
    world = make_world(support_valid_for=2 * DAY)  # its signing key: 90 days
    held = world.credential(world.sub_chain, world.sub)  # verified at T + 10
    later = T + 3 * DAY
    world.refresh_feed(later)
    with pytest.raises(CredentialError) as caught:
        world.credential(world.sub_chain, world.sub, now=later)
    assert caught.value.reason is CredentialFailure.ISSUER_INVALID
    point = world.point(world.store(world.bundle(now=later - 60, ttl=DAY), now=later))
    decision = point.decide(held, LOOKUP, now=later)
    assert not decision.allowed, decision
    assert "issuer" in decision.reason, decision


def test_a_verifier_fed_by_a_node_judges_issuer_histories_by_its_stored_copies(
    troth_home: Path,
) -> None:
    """75f delegation 2: a `troth.Verifier` fed by a node judged the issuer histories a chain
    carries by the feeds alone (and its own memory), not by the copies the node stores: once
    the node stored a delegate's rotation (a delegate is no member, so no feed names it), a
    delegation signed under the delegate's history from before (a thief's, with the key it
    retired) verified through the API, while `troth credential verify` on that node refused it
    (`history is older than the stored copy`), as the node's own decisions do."""
    clock = FixedClock(int(time.time()) - 20)  # the CLI reads the system clock
    with (
        troth.Node.open("acme", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
    ):
        acme = hub.create_authority()
        agents.enroll(acme.ticket({"orders.access": "read"}))
        helper, worker = agents.identities.create("helper"), agents.identities.create("worker")
        read = {"orders.access": "read"}
        chain = agents.delegate(agents.identity, to=helper, attributes=read, ttl=3600, purpose="p")
        agents.hold(helper, chain)
        signed_before = agents.delegate(helper, to=worker, attributes=read, ttl=3000, purpose="q")
        clock.advance(10)
        agents.identities.rotate(helper)  # the node stores helper's rotation
        verifier = troth.Verifier(trust=[acme.identifier], feeds=agents, clock=clock)
        with pytest.raises(troth.CredentialError) as caught:
            verifier.verify(signed_before, presenter=worker.identifier)
        assert caught.value.reason is CredentialFailure.ISSUER_INVALID, caught.value
        assert caught.value.link == 2
    path = troth_home / "worker.chain"
    path.write_bytes(signed_before.chain)
    cli = run_json(
        "credential",
        "verify",
        str(path),
        "--trust",
        str(acme.identifier),
        "--authority",
        "acme",
        "--node",
        "agents",
        code=1,
    )
    assert cli["reason"] == CredentialFailure.ISSUER_INVALID.value
