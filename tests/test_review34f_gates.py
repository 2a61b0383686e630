"""Review 34f, gates: attacks on the policy gates (docs/policy.md)."""

from __future__ import annotations

import pytest

from tests.support.gates import (
    POLICIES,
    TOOLS,
    GatesWorld,
    T,
    lookup_order,
    make_world,
    rotate,
    superseding,
)
from troth.clock import FixedClock
from troth.credentials import RevocationKind
from troth.errors import PolicyError, PolicyFailure
from troth.gates import (
    ListRecorder,
    Outcome,
    PolicyEngine,
    Tool,
    ToolCall,
    ToolGate,
    cedar_call,
    compile_policies,
)

ALL = '@id("all") permit(principal, action in Action::"invoke", resource);'
EXPORT = ToolCall("export_customers", {})


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


@pytest.mark.parametrize("out_of_force", ["rotated", "revoked"])
def test_an_older_bundle_cannot_replace_one_whose_signer_left(
    world: GatesWorld, out_of_force: str
) -> None:
    """The authority's early permit-all (revision 3) was replaced by its policy-admin's
    tighter revision 9. The admin then rotates its key (routine) or is revoked: revision 9 is
    no longer in force, so the node denies everything until a replacement comes. Any member
    (`policy.push` is open to members) replays revision 3, still unexpired: it must not come
    back, else the member calls what revision 9 forbade (export_customers).

    Review 34f, gates 1: was a strict xfail until BundleStore.accept took a replacement of a
    bundle out of force only when issued since it, not before (troth.gates.store._rollback)."""
    older = world.bundle(revision=3, policies=ALL, now=T)
    store = world.store(older, world.bundle(revision=9, by_admin=True, now=T + 1))
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    assert not point.decide(member, EXPORT, now=T + 10).allowed
    if out_of_force == "rotated":
        history, _ = rotate(world, world.admin, T + 20)
        world.feed = superseding(world.authority, history, world.authority, T + 30)
    else:
        world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 30)

    with pytest.raises(PolicyError) as caught:
        store.accept(older, feeds=world.feeds(), now=T + 31)
    assert caught.value.reason is PolicyFailure.ROLLBACK
    assert "issued" in caught.value.detail
    denied = point.decide(member, EXPORT, now=T + 32)
    failure = (
        PolicyFailure.SIGNER_SUPERSEDED
        if out_of_force == "rotated"
        else PolicyFailure.SIGNER_REVOKED
    )
    assert (denied.allowed, denied.reason) == (False, f"denied: {failure.value}")


@pytest.mark.parametrize(
    "diagnostics",
    [
        '{"reason":["policy0"]}',
        '{"reason":["policy0"],"evaluation_errors":["error while evaluating policy `policy2`"]}',
    ],
)
def test_an_allow_without_its_errors_field_denies(
    monkeypatch: pytest.MonkeyPatch, diagnostics: str
) -> None:
    """cedarpy is required as `>=4.12`: a release that moves or renames the diagnostics'
    `errors` (an erring forbid, an erring caveat: Cedar skips it and answers Allow) must not
    make every such Allow read as error-free. The answer's errors are part of its shape: an
    answer without them is one of another shape (UNREADABLE), a denial, as the module says.

    Review 34f, gates 2: was a strict xfail until troth.gates.cedar_call._read required the
    diagnostics' `errors` list."""
    world = make_world()
    member = world.credential(world.support_chain, world.support)
    answer = '{"decision":"Allow","diagnostics":' + diagnostics + "}"
    monkeypatch.setattr(cedar_call, "_native", lambda *_: [answer])
    engine = PolicyEngine(compile_policies(POLICIES, "", TOOLS), revision=7)
    decision = engine.decide(member, ToolCall("refund", {"order_id": "o1", "amount": 20}), now=T)
    assert (decision.allowed, decision.outcome) == (False, Outcome.EVALUATION_ERROR)
    assert decision.errors == ("the policy engine could not decide",)


class Posing(str):
    """A string whose text (what JSON encodes, what Cedar judges) is one order, and which
    formats, prints and concatenates as another."""

    def __format__(self, spec: str) -> str:
        return "9999"

    def __str__(self) -> str:
        return "9999"


ONE_ORDER = POLICIES + (
    '@id("own-order") forbid(principal, action == Action::"invoke:lookup_order", resource)\n'
    '  unless { context.args.order_id == "4471" };'
)


def test_a_tool_runs_with_the_plain_values_judged() -> None:
    """`ToolGate.invoke` read the arguments' Mapping once (review 31b) but handed the tool the
    caller's own values: a `str` subclass whose text is "4471" (JSON encodes the text, so
    Cedar judged order 4471, the only one `own-order` lets through) formats as "9999", and the
    tool looked up order 9999. The tool, the record and Cedar must see the same plain JSON
    values.

    Review 34f, gates 3: was a strict xfail until ToolGate.invoke ran the tool with the
    arguments encoded and decoded once (troth.gates.tools._plain)."""
    world = make_world()
    recorder = ListRecorder()
    gate = ToolGate(
        world.point(world.store(world.bundle(policies=ONE_ORDER)), recorder),
        [Tool.from_function(lookup_order)],
        clock=FixedClock(T + 10),
    )
    member = world.credential(world.support_chain, world.support)
    assert gate.invoke(member, "lookup_order", {"order_id": "9999"}).decision.outcome is (
        Outcome.FORBIDDEN
    )
    result = gate.invoke(member, "lookup_order", {"order_id": Posing("4471")})
    assert result.decision.outcome is Outcome.ALLOWED
    assert result.value == "order 4471: 2 items, paid"
    record = recorder.records[-1].request
    assert isinstance(record, ToolCall)
    assert type(record.arguments["order_id"]) is str
