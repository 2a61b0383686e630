"""Rotations against what a gate holds (docs/policy.md, "Bundles on a node" and "Decisions"):
a bundle whose signer (or a history its chain carried) the feed supersedes is no longer in
force, a verified bundle of any revision replaces it (one of two concurrent replacements
wins, across processes too), while a bundle still in force is never rolled back; a held
`VerifiedCredential` whose issuer or presenter rotated is denied. What did not rotate keeps
working, and the state survives a reopen."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.gates import (
    POLICIES,
    TOOLS,
    GatesWorld,
    T,
    make_world,
    rotate,
    superseding,
)
from tests.support.parties import Party
from troth import limits
from troth.credentials import Attributes, CredentialChain, RevocationKind, delegate
from troth.crypto import sha256
from troth.errors import CredentialError, CredentialFailure, PolicyError, PolicyFailure
from troth.gates import BundleStore, Outcome, SqliteBundleTable, ToolCall, create_bundle
from troth.storage import SqliteDatabase

P = PolicyFailure
DAY = 86_400
ALL = '@id("all") permit(principal, action in Action::"invoke", resource);'
LOOKUP = ToolCall("lookup_order", {"order_id": "4471"})
EXPORT = ToolCall("export_customers", {})


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


def admin_bundle(
    world: GatesWorld, admin: Party, revision: int, policies: str = POLICIES, now: int = T + 1
) -> bytes:
    """A bundle `admin` (the policy-admin, as it signs) signs with its chain."""
    return create_bundle(
        admin.signer,
        authority=world.authority.identifier,
        policies=policies,
        schema="",
        tools=TOOLS,
        revision=revision,
        now=now,
        ttl=7 * DAY,
        chain=world.admin_chain,
    )


def authority_bundle(
    world: GatesWorld, authority: Party, revision: int, policies: str = POLICIES, now: int = T
) -> bytes:
    return create_bundle(
        authority.signer,
        authority=world.authority.identifier,
        policies=policies,
        schema="",
        tools=TOOLS,
        revision=revision,
        now=now,
        ttl=DAY,
    )


def not_in_force(store: BundleStore, world: GatesWorld, now: int) -> PolicyFailure:
    with pytest.raises(PolicyError) as caught:
        store.engine(world.authority.identifier, feed=world.feed, now=now)
    return caught.value.reason


def revision(store: BundleStore, world: GatesWorld) -> int:
    held = store.active(world.authority.identifier)
    assert held is not None
    return held.bundle.body.revision


def stolen_then_rotated(world: GatesWorld, store: BundleStore) -> tuple[bytes, Party]:
    """A thief's permit-all bundle (the authority's key, top revision) is accepted; the
    authority rotates and its feed supersedes the old history. The authority as it signs now."""
    stolen = authority_bundle(world, world.authority, limits.MAX_POLICY_REVISION, ALL)
    store.accept(stolen, feeds=world.feeds(), now=T + 5)
    history, authority = rotate(world, world.authority, T + 20)
    world.feed = superseding(authority, history, world.authority, T + 30)
    return stolen, authority


# -- bundles --------------------------------------------------------------------------------------


def test_a_bundle_stays_in_force_when_an_identity_outside_its_signers_chain_rotates(
    world: GatesWorld,
) -> None:
    store = world.store(world.bundle(by_admin=True))
    point = world.point(store)
    history, _ = rotate(world, world.support, T + 20)
    world.feed = superseding(world.authority, history, world.authority, T + 30)
    member = world.credential(world.support_chain, world.support, now=T + 35)
    decision = point.decide(member, LOOKUP, now=T + 40)
    assert decision.allowed


def test_a_rotated_admins_bundle_is_out_of_force_until_its_fresh_one_replaces_it(
    world: GatesWorld,
) -> None:
    """The admin's stolen key signed a permit-all at revision 5; the admin rotates. Its fresh
    bundle at revision 2 replaces the stolen one (any revision: that one is no longer in
    force), and decides from then on."""
    store = world.store(admin_bundle(world, world.admin, 5, ALL))
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    assert point.decide(member, EXPORT, now=T + 10).allowed
    history, admin = rotate(world, world.admin, T + 20)
    world.feed = superseding(world.authority, history, world.authority, T + 30)

    assert not_in_force(store, world, T + 31) is P.SIGNER_SUPERSEDED
    denied = point.decide(member, EXPORT, now=T + 31)
    assert (denied.allowed, denied.outcome) == (False, Outcome.NOT_IN_FORCE)
    assert "superseded" in denied.reason

    # dated more than the clock skew after the stolen one (review 35c, gates 1)
    store.accept(admin_bundle(world, admin, 2, now=T + 62), feeds=world.feeds(), now=T + 63)
    assert revision(store, world) == 2
    assert point.decide(member, LOOKUP, now=T + 64).allowed
    assert not point.decide(member, EXPORT, now=T + 64).allowed  # the stolen policy is gone


def test_a_fresh_bundle_of_a_higher_revision_from_the_rotated_signer_replaces_it(
    world: GatesWorld,
) -> None:
    store = world.store(world.bundle(revision=3))
    history, authority = rotate(world, world.authority, T + 20)
    world.feed = superseding(authority, history, world.authority, T + 30)
    store.accept(authority_bundle(world, authority, 4, now=T + 30), feeds=world.feeds(), now=T + 31)
    assert store.engine(world.authority.identifier, feed=world.feed, now=T + 32).revision == 4


def test_an_older_genuine_bundle_is_a_rollback_while_the_held_one_is_in_force(
    world: GatesWorld,
) -> None:
    """Only the held bundle's own signer matters: a feed superseding someone else opens no
    replacement."""
    older = world.bundle(revision=2)
    store = world.store(world.bundle(revision=3))
    history, _ = rotate(world, world.support, T + 20)
    world.feed = superseding(world.authority, history, world.authority, T + 30)
    with pytest.raises(PolicyError) as caught:
        store.accept(older, feeds=world.feeds(), now=T + 31)
    assert caught.value.reason is P.ROLLBACK
    assert revision(store, world) == 3


def test_what_the_stolen_key_signs_cannot_replace_what_it_signed(world: GatesWorld) -> None:
    """A replacement verifies in full: the thief's key, superseded, signs nothing new that a
    store takes (at any revision), and its old bundle cannot come back once replaced."""
    store = BundleStore(world.verifier)
    stolen, authority = stolen_then_rotated(world, store)
    again = authority_bundle(world, world.authority, 2, ALL, now=T + 61)
    with pytest.raises(PolicyError) as caught:
        store.accept(again, feeds=world.feeds(), now=T + 62)
    assert caught.value.reason is P.SIGNER_SUPERSEDED
    assert revision(store, world) == limits.MAX_POLICY_REVISION
    store.accept(authority_bundle(world, authority, 2, now=T + 61), feeds=world.feeds(), now=T + 62)
    with pytest.raises(PolicyError) as caught:
        store.accept(stolen, feeds=world.feeds(), now=T + 63)
    assert caught.value.reason is P.SIGNER_SUPERSEDED
    assert revision(store, world) == 2


def test_a_revoked_signers_bundle_is_replaced_by_a_lower_revision(world: GatesWorld) -> None:
    store = world.store(world.bundle(revision=9, by_admin=True))
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 10)
    assert not_in_force(store, world, T + 11) is P.SIGNER_REVOKED
    store.accept(world.bundle(revision=2, now=T + 61), feeds=world.feeds(), now=T + 62)
    assert store.engine(world.authority.identifier, feed=world.feed, now=T + 63).revision == 2


def test_of_two_concurrent_replacements_one_wins(world: GatesWorld) -> None:
    store = BundleStore(world.verifier)
    _, authority = stolen_then_rotated(world, store)
    candidates = [
        authority_bundle(world, authority, 2, POLICIES, now=T + 61),
        authority_bundle(world, authority, 2, ALL, now=T + 61),
    ]
    start = threading.Barrier(2)
    outcomes: list[PolicyFailure | None] = []

    def accept(data: bytes) -> None:
        start.wait()
        try:
            store.accept(data, feeds=world.feeds(), now=T + 62)
            outcomes.append(None)
        except PolicyError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=accept, args=(data,)) for data in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # of two bundles of one revision the lower digest wins, whichever came first: the higher
    # refused after it, or replaced by it (docs/policy.md, "Bundles on a node"; review 41d,
    # bundles 2)
    assert sorted(outcomes, key=str) in ([None, None], [None, P.SAME_REVISION])
    held = store.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.data == min(candidates, key=sha256)


def test_a_replacement_persists_and_another_process_takes_it_up(
    world: GatesWorld, tmp_path: Path
) -> None:
    """Two stores on one database (two processes): the superseded bundle reloads out of force
    (its histories come back with it); one process replaces it, the other's own replacement
    loses (its compare-and-set finds another bundle) and its `reload` takes the winner up,
    though its revision is lower than the one it held; a third, opened afresh, loads it."""
    db = SqliteDatabase(tmp_path / "node.db")
    first = BundleStore(world.verifier, SqliteBundleTable(db))
    _, authority = stolen_then_rotated(world, first)
    second = BundleStore(world.verifier, SqliteBundleTable(db))
    assert [b.body.revision for b in second.reload(now=T + 31)] == [limits.MAX_POLICY_REVISION]
    assert not_in_force(second, world, T + 31) is P.SIGNER_SUPERSEDED

    winner = authority_bundle(world, authority, 2, now=T + 61)
    first.accept(winner, feeds=world.feeds(), now=T + 62)
    with pytest.raises(PolicyError) as caught:
        second.accept(
            authority_bundle(world, authority, 3, ALL, now=T + 61), feeds=world.feeds(), now=T + 62
        )
    assert caught.value.reason is P.ROLLBACK
    assert [b.data for b in second.reload(now=T + 63)] == [winner]
    assert second.reload(now=T + 64) == []  # nothing changed since
    assert second.engine(world.authority.identifier, feed=world.feed, now=T + 64).revision == 2
    third = BundleStore(world.verifier, SqliteBundleTable(db))
    assert [b.data for b in third.reload(now=T + 65)] == [winner]
    db.close()


def test_a_table_an_older_troth_made_gains_its_digests(world: GatesWorld, tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    db.execute(
        "CREATE TABLE gates_policy_bundles (authority BLOB PRIMARY KEY, "
        "revision INTEGER NOT NULL, bundle BLOB NOT NULL, stored_at INTEGER NOT NULL)"
    )
    data = world.bundle(revision=4)
    db.execute(
        "INSERT INTO gates_policy_bundles VALUES (?, ?, ?, ?)",
        (world.authority.identifier.digest, 4, data, T),
    )
    table = SqliteBundleTable(db)
    assert table.stamps() == {world.authority.identifier.digest: (4, sha256(data))}
    store = BundleStore(world.verifier, table)
    assert [b.data for b in store.reload(now=T + 5)] == [data]
    assert store.reload(now=T + 6) == []
    db.close()


# -- held credentials -----------------------------------------------------------------------------


def test_a_held_credential_whose_presenter_rotated_is_denied(world: GatesWorld) -> None:
    point = world.point(world.store(world.bundle()))
    sub = world.verifier.verify(
        world.sub_chain, presenter=world.sub.identity, feeds=world.feeds(), now=T + 10
    )
    assert sub.presenter is world.sub.identity
    assert point.decide(sub, LOOKUP, now=T + 20).allowed
    history, _ = rotate(world, world.sub, T + 30)
    world.feed = superseding(world.authority, history, world.authority, T + 40)
    decision = point.decide(sub, LOOKUP, now=T + 45)
    assert (decision.allowed, decision.outcome) == (False, Outcome.CREDENTIAL)
    assert "superseded" in decision.reason


def test_a_held_credential_stays_allowed_when_an_identity_outside_its_chain_rotates(
    world: GatesWorld,
) -> None:
    point = world.point(world.store(world.bundle()))
    sub = world.credential(world.sub_chain, world.sub)
    history, _ = rotate(world, world.admin, T + 30)
    world.feed = superseding(world.authority, history, world.authority, T + 40)
    assert point.decide(sub, LOOKUP, now=T + 45).allowed


def test_a_delegation_made_again_under_the_rotated_history_is_allowed(world: GatesWorld) -> None:
    point = world.point(world.store(world.bundle()))
    old = world.credential(world.sub_chain, world.sub)
    history, support = rotate(world, world.support, T + 30)
    world.feed = superseding(world.authority, history, world.authority, T + 40)
    again = delegate(
        support.signer,
        CredentialChain.decode(world.support_chain),
        subject=world.sub.identifier,
        attributes=Attributes({"orders.access": "read"}),
        now=T + 41,
        ttl=DAY,
        purpose="answer complaint 123",
    )
    fresh = world.credential(again.encode(), world.sub, now=T + 42)
    assert point.decide(fresh, LOOKUP, now=T + 45).allowed
    assert not point.decide(old, LOOKUP, now=T + 45).allowed
    with pytest.raises(CredentialError) as raised:
        world.credential(world.sub_chain, world.sub, now=T + 45)
    assert raised.value.reason is CredentialFailure.SUPERSEDED
