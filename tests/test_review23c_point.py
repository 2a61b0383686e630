"""Review 23c: the decision point's record of a call denied because no bundle is in force.

`DecisionPoint._decide` took the caller's credential, verified, inside `_engine`, which raised
when the authority's bundle was not in force (expired, none held, stale feed, signer revoked):
the record then carried no credential although the caller's was valid and current. The
trace's record of such a denial named no caller (`decision_content` adds `inputs.caller` only
with a credential) and counted it against the shared share of the uncredentialed: every call
a member made while the bundle was out of force was signed as nobody's. A caller whose
credential is not current (revoked, expired) still gets a record without one, as before.

Nor did a denial for a refused credential name anyone: a revoked agent calling on, over a
channel whose peer the node knows, was recorded as nobody. The record now carries who
presented the credential (`DecisionRecord.presenter`: the credential's actor, or the
`CredentialSource`'s presenter, `troth.gates.Presenting`), and the trace names it in
`inputs.caller`.
"""

from __future__ import annotations

import pytest

from tests.support.gates import T, make_world
from troth.credentials import CredentialChain, RevocationKind
from troth.gates import ListRecorder, Outcome, PresentedChain, ToolCall
from troth.trace.adapters import decision_content

CALL = ToolCall("lookup_order", {"order_id": "o1"})
LATER = T + 7200  # the bundle below lived an hour


@pytest.mark.parametrize("presented", [False, True])
def test_a_call_denied_while_the_bundle_is_out_of_force_is_recorded_as_the_callers(
    presented: bool,
) -> None:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle(ttl=3600)), recorder)
    world.refresh_feed(LATER)  # the caller's credential is current at LATER; the bundle is not
    caller = (
        PresentedChain(world.sub_chain, world.sub.identifier, world.verifier, world.held_feed)
        if presented
        else world.credential(world.sub_chain, world.sub, now=LATER)
    )
    decision = point.decide(caller, CALL, now=LATER)
    assert (decision.outcome, decision.reason) == (
        Outcome.NOT_IN_FORCE,
        "denied: the bundle expired",
    )
    (record,) = recorder.records
    assert record.credential is not None
    assert record.credential.actor == world.sub.identifier
    content, _ = decision_content(record, world.support.identifier)
    assert content.values["inputs"]["caller"]["actor"] == str(world.sub.identifier)


def test_a_revoked_caller_denied_while_the_bundle_is_out_of_force_has_no_credential() -> None:
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle(ttl=3600)), recorder)
    caller = world.credential(world.sub_chain, world.sub)
    link = CredentialChain.decode(world.sub_chain).credentials[-1].hash
    world.revoke(RevocationKind.CREDENTIAL, link, LATER)
    decision = point.decide(caller, CALL, now=LATER)
    assert (decision.outcome, decision.reason) == (
        Outcome.NOT_IN_FORCE,
        "denied: the bundle expired",
    )
    record = recorder.records[-1]
    assert record.credential is None  # none valid: as DecisionRecord says
    assert record.presenter == world.sub.identifier  # but who presented it is known


@pytest.mark.parametrize("presented", [False, True])
def test_a_caller_whose_credential_is_refused_is_named_in_the_record_of_its_denial(
    presented: bool,
) -> None:
    # a revoked agent that keeps calling: each denial must say who, though no credential holds
    world = make_world()
    recorder = ListRecorder()
    point = world.point(world.store(world.bundle()), recorder)
    caller = (
        PresentedChain(world.sub_chain, world.sub.identifier, world.verifier, world.held_feed)
        if presented
        else world.credential(world.sub_chain, world.sub)
    )
    link = CredentialChain.decode(world.sub_chain).credentials[-1].hash
    world.revoke(RevocationKind.CREDENTIAL, link, T + 20)
    decision = point.decide(caller, CALL, now=T + 30)
    assert decision.reason == "denied: the caller's credential is revoked"
    (record,) = recorder.records
    assert (record.credential, record.presenter) == (None, world.sub.identifier)
    content, _ = decision_content(record, world.support.identifier)
    assert content.values["inputs"]["caller"] == {"actor": str(world.sub.identifier)}
