"""Review 41d, bundles: a node's stored bundle and the node's clock (docs/policy.md, "Bundles
on a node").

bundles 1: `BundleStore.reload` marked a stored bundle it could not load as never to be tried
again, whatever the reason, a refusal for the time included: a node restarted with its clock
behind (a VM or a board whose clock is set late at boot) read its own bundle as not yet
valid, and kept it inactive after the clock was right, until a restart. The same bundle
arriving again (a pull, a push) was refused as a rollback (the table holds its revision), so
every gated call of the authority's members was denied (`no bundle`) until a higher revision
came. A clock set back past a stored bundle's expiry and forward again did the same.

bundles 2: two different bundles of one revision (the authority's and a policy-admin's, or
two admins') split the nodes for good, each keeping the one it saw first (fixed in review 42b:
the lower digest wins on every node; tests/test_review42b_bundles.py).
"""

from __future__ import annotations

import pytest

from tests.support.gates import TOOLS, T, make_world, rotate, superseding
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import PolicyError, PolicyFailure
from troth.gates import BundleStore, MemoryBundleTable, ToolCall, create_bundle

REFUND = ToolCall("refund", {"order_id": "4471", "amount": 20})


def test_a_stored_bundle_refused_for_the_time_loads_once_the_clock_is_right() -> None:
    """bundles 1: a reload at a clock 10 minutes behind the bundle's issue loads nothing; one
    at the right time loads it and it decides (the same bundle pushed again is then the
    active bytes). Was a strict xfail until `BundleStore.reload` tried such a bundle again
    once `now` is inside its window (it is not decoded again before)."""
    world = make_world()
    table = MemoryBundleTable()
    data = world.bundle(now=T)
    BundleStore(world.verifier, table).accept(data, feeds=world.feeds(), now=T + 5)
    restarted = BundleStore(world.verifier, table)
    assert restarted.reload(now=T - 600) == []
    assert restarted.reload(now=T - 300) == []  # still behind: not tried (nothing loads)
    loaded = restarted.reload(now=T + 10)
    assert [bundle.data for bundle in loaded] == [data]
    assert restarted.accept(data, feeds=world.feeds(), now=T + 10).data == data
    point = world.point(restarted)
    support = world.credential(world.support_chain, world.support)
    decision = point.decide(support, REFUND, now=T + 10)
    assert (decision.allowed, decision.policies) == (True, ("refund",))


def test_a_stored_bundle_read_past_its_expiry_loads_when_the_clock_comes_back() -> None:
    """bundles 1: a clock run past the stored bundle's expiry (one day) and set back: the
    bundle loads at the first reload within its lifetime. A bundle read at a time outside its
    window is still not in force (`engine` refuses it then). Was a strict xfail until the
    same fix (`BundleStore.reload`: a refusal for the time is kept with the bundle's window)."""
    world = make_world()
    table = MemoryBundleTable()
    data = world.bundle(now=T, ttl=86_400)
    BundleStore(world.verifier, table).accept(data, feeds=world.feeds(), now=T + 5)
    restarted = BundleStore(world.verifier, table)
    assert restarted.reload(now=T + 2 * 86_400) == []
    assert [b.data for b in restarted.reload(now=T + 20)] == [data]
    with pytest.raises(PolicyError) as refused:
        restarted.engine(world.authority.identifier, feed=world.feed, now=T + 86_400)
    assert refused.value.reason is PolicyFailure.EXPIRED


TIGHTER = """\
@id("lookup") permit(principal, action == Action::"invoke:lookup_order", resource)
  when { principal.hasTag("orders.access") };
"""


def test_two_bundles_of_one_revision_converge_on_every_node() -> None:
    """bundles 2: the authority and its policy-admin each sign a revision 6 (two admins
    bumping the revision at once do the same), one with refund and one without. A node that
    took the authority's first refused the admin's as a rollback, and a node that took the
    admin's first refused the authority's: the fleet decided refund two ways under "revision
    6" (a decision and its trace named the revision only), and a pull never mended it (`get`
    answered only a higher revision). Only a revision 7 ended it. Was a strict xfail until
    `BundleStore.accept` kept, of two bundles of one revision, the one of the lower digest on
    every node (the other refused SAME_REVISION, or replaced), and decisions name the digest
    (review 42b)."""
    world = make_world()
    mine = world.bundle(revision=6, now=T)
    admins = world.bundle(revision=6, now=T + 1, by_admin=True, policies=TIGHTER)
    low = min(mine, admins, key=sha256)
    first, second = BundleStore(world.verifier), BundleStore(world.verifier)
    for store, order in ((first, (mine, admins)), (second, (admins, mine))):
        store.accept(order[0], feeds=world.feeds(), now=T + 5)
        if order[0] == low:
            with pytest.raises(PolicyError) as refused:
                store.accept(order[1], feeds=world.feeds(), now=T + 5)
            assert refused.value.reason is PolicyFailure.SAME_REVISION
        else:
            assert store.accept(order[1], feeds=world.feeds(), now=T + 5).data == low
    support = world.credential(world.support_chain, world.support)
    decisions = [
        world.point(store).decide(support, REFUND, now=T + 10) for store in (first, second)
    ]
    assert decisions[0] == decisions[1]
    assert (decisions[0].revision, decisions[0].digest) == (6, sha256(low).hex())


PERMIT_ALL = '@id("all") permit(principal, action in Action::"invoke", resource);'


def test_a_stolen_pre_rotation_key_signs_nothing_with_either_history() -> None:
    """Refuted: a thief holding the authority's key from before its rotation signs a
    permit-all (dated before the rotation) and pushes it to a node with the feed that says the
    rotation. Carrying the old history it is superseded; swapping in the current history (the
    history is not under the bundle's signature, so anyone can swap it) fails too, the signing
    key's attestation being bound to the old history's last change."""
    world = make_world()
    stolen = create_bundle(
        world.authority.signer,
        authority=world.authority.identifier,
        policies=PERMIT_ALL,
        schema="",
        tools=TOOLS,
        revision=9,
        now=T,
        ttl=86_400,
    )
    history, authority = rotate(world, world.authority, T + 20)
    world.feed = superseding(authority, history, world.authority, T + 30)
    fields = cbor.decode(stolen)
    fields[5] = authority.identity.history  # the signer's history, in the signed envelope
    swapped = cbor.encode(fields)
    reasons = []
    for data in (stolen, swapped):
        with pytest.raises(PolicyError) as refused:
            BundleStore(world.verifier).accept(data, feeds=world.feeds(), now=T + 40)
        reasons.append(refused.value.reason)
    assert reasons == [PolicyFailure.SIGNER_SUPERSEDED, PolicyFailure.SIGNER_INVALID]
