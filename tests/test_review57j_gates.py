"""Review 57j (adversarial review of this session's gates and traces code), gates: 57a's
`DormantBundles` (troth.gates.dormant), which keeps a table's bundle that did not load in
force against the older revision it replaced (deny when in doubt).

Gates 1. A running node holds revision 1; `troth policy push` stored revision 2 in its table,
which the node's reload could not check (its validating child did not start:
PolicyNotChecked), so nothing decides (57a, gates 2) until a reload after the backoff (up to
CEDAR_RETRY_MAX_SECONDS) loads it. Meanwhile the node asks for any revision (57a, gates 3) and
is handed revision 2 again, verified now: `accept` refused it as a rollback ("a newer
revision is stored"), the very bytes its table holds, so the denial lasted the whole backoff
however often the good bundle arrived. `accept` now takes the bytes its table holds (not held
back: a restored copy's decide once confirmed) as stored (`_replace_stored`), in place of the
one held too (the same revision's lower digest: gates 2). Both tests were strict xfails until
then.

Gates 2. `DormantBundles` put the active bundle out of force for a table bundle of a higher
revision only. A bundle of the same revision and a lower digest replaces it in the table too
(two signers at one revision: the lower digest is the one every node keeps; review 41d,
bundles 2): stored by `troth policy push` and not loaded at the node's reload (not checked),
it left the node deciding by the one it replaced, and handing that one out — what 57a, gates 2
and 3 closed for a higher revision. A table bundle of the active revision and another digest
now replaces it as a higher revision does (`DormantBundles.ahead`). Was a strict xfail until
then.
"""

from __future__ import annotations

import pytest

from tests.support.gates import POLICIES, GatesWorld, T, make_world
from tests.test_review57a_gates import NO_LOOKUP, _no_child
from troth.crypto import sha256
from troth.gates import BundleStore, ToolCall


def test_the_stored_bundle_handed_again_and_verified_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    running = world.store(world.bundle(revision=1))
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "o"})
    tighter = "// " + "x" * 40_000 + "\n" + POLICIES + NO_LOOKUP  # validated in a child
    newer = world.bundle(revision=2, policies=tighter)
    pushed = BundleStore(world.verifier, running.table)  # the CLI's store
    pushed.accept(newer, feeds=world.feeds(), now=T + 6)
    with monkeypatch.context() as patched:
        _no_child(patched)
        assert running.reload(now=T + 10) == []
    decision = world.point(running).decide(member, call, now=T + 10)
    assert not decision.allowed  # nothing decides (57a, gates 2)
    running.accept(newer, feeds=world.feeds(), now=T + 11)  # a pull's answer: checked now
    held = running.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.body.revision == 2
    assert running.reload(now=T + 12) == []  # not loaded twice
    decision = world.point(running).decide(member, call, now=T + 12)
    assert not decision.allowed  # by revision 2's forbid, in force
    assert decision.revision == 2
    assert decision.policies == ("no-lookup",)


# -- gates 2: a bundle of the active one's revision that replaced it, dormant ------------------


def _two_of_revision_1(world: GatesWorld) -> tuple[bytes, bytes]:
    """Two bundles of revision 1: one permitting lookups, and one forbidding them of a lower
    digest (the one every node keeps), its policies validated in a child."""
    tighter = "// " + "x" * 40_000 + "\n" + POLICIES + NO_LOOKUP
    other = min(
        (world.bundle(revision=1, policies=f"{tighter}// {n}\n") for n in range(4)), key=sha256
    )
    one = next(
        data
        for n in range(1024)
        if sha256(data := world.bundle(revision=1, policies=f"{POLICIES}// {n}\n")) > sha256(other)
    )
    return one, other


def test_a_same_revision_bundle_that_replaced_the_active_one_does_not_leave_it_deciding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two bundles of revision 1 (two signers at one revision: the lower digest is the one every
    node keeps). The running node holds the higher digest, which permits lookups; `troth policy
    push` stored the lower, which forbids them, in its table in its place. The node's reload
    cannot check it: it must not go on deciding by the one its table replaced (57a, gates 2)."""
    world = make_world()
    one, other = _two_of_revision_1(world)
    running = world.store(one)
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "o"})
    assert world.point(running).decide(member, call, now=T + 10).allowed
    pushed = BundleStore(world.verifier, running.table)  # the CLI's store
    pushed.reload(now=T + 6)
    pushed.accept(other, feeds=world.feeds(), now=T + 6)  # the lower digest: replaces it
    assert running.table.load(world.authority.identifier.digest) == other
    with monkeypatch.context() as patched:
        _no_child(patched)
        assert running.reload(now=T + 10) == []
    decision = world.point(running).decide(member, call, now=T + 10)
    assert not decision.allowed, decision.reason


def test_the_stored_bundle_of_the_held_revision_handed_again_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gates 1 for gates 2's bundle: the lower digest the table holds in place of the one held,
    handed again (a pull's answer) and verified now, decides."""
    world = make_world()
    one, other = _two_of_revision_1(world)
    running = world.store(one)
    pushed = BundleStore(world.verifier, running.table)
    pushed.reload(now=T + 6)
    pushed.accept(other, feeds=world.feeds(), now=T + 6)
    with monkeypatch.context() as patched:
        _no_child(patched)
        assert running.reload(now=T + 10) == []
    running.accept(other, feeds=world.feeds(), now=T + 11)
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("lookup_order", {"order_id": "o"})
    decision = world.point(running).decide(member, call, now=T + 12)
    assert decision.policies == ("no-lookup",)
    assert running.dormant.unloaded() == []
