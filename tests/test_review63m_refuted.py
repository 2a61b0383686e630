"""Review 63m, refuted: attacks on this session's authority and gates fixes that did not work.

Authority 1 and 3 (a refresh or enrollment goes on when the supersession of the member's new
history cannot be published; `rotated` keeps the history and reports the refusal):
- the thief's stolen old signing key under the member's new (stored, unpublished) history:
  its attestation is under the older change (ATTESTATION_STALE), refused;
- the thief's enrollment request signed before the rotation, replayed after it: the stored
  copy is longer (a rollback), refused, the ticket's uses untouched;
- a non-member's `rotated` with a spent budget: NOT_A_MEMBER before anything is stored;
- the refused announcement is not remembered as answered: once the budget refills, the
  member's next refresh publishes the supersession (so verifiers elsewhere learn it).
Authority 2 (the authority's cached held feed):
- a store rolled back and regrown to the same count with other entries, and to more: the
  view is read from the start again, the lost revocations gone, the new ones held;
- an older view after a newer one grew the shared index: it still holds only its own entries;
- another connection (a second process) appending: the next view holds its entries;
- two threads taking views while a third revokes: every view is the store's first `count`.
Gates 1 (63b `_declarations`): every prefix of a schema using each declaration form scans
without an exception. 63f identity 2 (the lead's): a stored bundle's checkpointed signer is
refused when the store does not hold the checkpoint; the authority's own feed too stale to
attest it refuses a received bundle.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.test_review63a_authority import _ticket
from tests.test_review63f_identity import NOW as LATER
from tests.test_review63f_identity import _signed_bundle
from troth import limits
from troth.authority import Authority
from troth.authority.client import enroll_request, refresh_request, rotated_request
from troth.authority.requests import REQUEST_TYPE, VERSION
from troth.credentials import ChainVerifier, TrustPolicy, VerifiedFeed
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    IdentityFailure,
    PolicyError,
    PolicyFailure,
)
from troth.gates.bundles import load_stored_bundle, verify_bundle
from troth.gates.nesting import action_hierarchy, cedar_refusal, largest_types
from troth.gates.store import BundleStore
from troth.identity import Identifier
from troth.node import Node, init_node, open_node

_A = AuthorityFailure


def _two_nodes() -> tuple[Node, Node]:
    init_node("auth")
    init_node("agents")
    return open_node("auth"), open_node("agents")


def test_the_old_signing_key_under_the_new_unpublished_history_is_refused(
    troth_home: Path,
) -> None:
    auth_node, agents = _two_nodes()
    with auth_node, agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=0)
        ids = agents.identities
        alice = ids.create(now=NOW, name="alice").identifier
        authority.enroll(enroll_request(ids, "alice", _ticket(authority), now=NOW), now=NOW)
        old = ids.signer("alice", now=NOW)  # the thief's copy (the vault drops it on rotation)
        body = cbor.encode(
            [REQUEST_TYPE, VERSION, "refresh", authority.identifier.digest, NOW + 3, []]
        )
        signature = old.sign(body)
        ids.rotate("alice", now=NOW + 1)
        own = refresh_request(ids, "alice", authority.identifier, now=NOW + 2)
        authority.refresh(own, now=NOW + 2)  # stored, not published (quota 0)
        assert authority.held_feed(now=NOW + 2).supersession(alice) is None
        new_history = ids.signer("alice", now=NOW + 2).identity.history
        request = cbor.encode([body, signature, old.attestation, new_history])
        with pytest.raises(AuthorityError) as caught:
            authority.refresh(request, now=NOW + 3)
        assert caught.value.reason is _A.REQUEST_INVALID
        assert IdentityFailure.ATTESTATION_STALE.value in str(caught.value)


def test_a_stolen_enrollment_request_replayed_after_the_rotation_is_refused(
    troth_home: Path,
) -> None:
    auth_node, agents = _two_nodes()
    with auth_node, agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=0)
        ids = agents.identities
        ids.create(now=NOW, name="alice")
        ticket = _ticket(authority)
        stolen = enroll_request(ids, "alice", ticket, now=NOW)
        authority.enroll(stolen, now=NOW)
        ids.rotate("alice", now=NOW + 1)
        authority.refresh(
            refresh_request(ids, "alice", authority.identifier, now=NOW + 2), now=NOW + 2
        )
        with pytest.raises(AuthorityError) as caught:
            authority.enroll(stolen, now=NOW + 3)
        assert caught.value.reason is _A.REQUEST_INVALID


def test_a_non_members_rotation_stores_nothing_with_a_spent_budget(troth_home: Path) -> None:
    auth_node, agents = _two_nodes()
    with auth_node, agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=0)
        ids = agents.identities
        bob = ids.create(now=NOW, name="bob").identifier
        ids.rotate("bob", now=NOW + 1)
        with pytest.raises(AuthorityError) as caught:
            authority.rotated(
                rotated_request(ids, "bob", authority.identifier, now=NOW + 2), now=NOW + 2
            )
        assert caught.value.reason is _A.NOT_A_MEMBER
        assert authority.identities.stored_changes(bob) is None


def test_a_refused_announcement_is_published_once_the_budget_refills(troth_home: Path) -> None:
    auth_node, agents = _two_nodes()
    with auth_node, agents:
        authority = auth_node.create_authority("acme", now=NOW, revocation_quota=1)
        ids = agents.identities
        alice = ids.create(now=NOW, name="alice").identifier
        authority.enroll(enroll_request(ids, "alice", _ticket(authority), now=NOW), now=NOW)
        ids.rotate("alice", now=NOW + 1)
        authority.rotated(
            rotated_request(ids, "alice", authority.identifier, now=NOW + 2), now=NOW + 2
        )
        ids.rotate("alice", now=NOW + 3)
        announce = rotated_request(ids, "alice", authority.identifier, now=NOW + 4)
        with pytest.raises(AuthorityError) as caught:
            authority.rotated(announce, now=NOW + 4)
        assert caught.value.reason is _A.QUOTA_EXCEEDED
        with pytest.raises(AuthorityError):  # the same bytes again: not a remembered answer
            authority.rotated(announce, now=NOW + 5)
        superseded = authority.held_feed(now=NOW + 5).supersession(alice)
        assert superseded is not None
        assert superseded.changes == 2
        later = NOW + limits.REVOCATION_QUOTA_WINDOW + 10
        chain = authority.refresh(
            refresh_request(ids, "alice", authority.identifier, now=later), now=later
        )
        assert chain.credentials[0].body
        superseded = authority.held_feed(now=later).supersession(alice)
        assert superseded is not None
        assert superseded.changes == 3


# -- authority 2: the cached held feed ---------------------------------------------------------


def _revoke(authority: Authority, count: int, now: int) -> list[bytes]:
    hashes = [os.urandom(32) for _ in range(count)]
    authority.revoke_credentials(hashes, now=now)
    return hashes


def _roll_back(authority: Authority, to: int) -> None:
    """The store as a restored older copy holds it: the feed's entries from `to` on gone."""
    db = authority.store._db  # type: ignore[attr-defined]
    with db.transaction():
        db.execute("DELETE FROM revocations WHERE seq >= ?", (to,))


def _holds_exactly(feed: VerifiedFeed, revoked: list[bytes], gone: list[bytes]) -> None:
    assert all(feed.credential_revoked(h) for h in revoked)
    assert not any(feed.credential_revoked(h) for h in gone)
    assert set(feed.revoked_credentials) == set(revoked)


@pytest.mark.parametrize("regrown", [3, 6], ids=["same-count", "longer"])
def test_a_rolled_back_and_regrown_feed_is_read_again(troth_home: Path, regrown: int) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        kept = _revoke(authority, 4, NOW)
        lost = _revoke(authority, 3, NOW + 1)
        before = authority.held_feed(now=NOW + 1)
        _holds_exactly(before, kept + lost, [])
        _roll_back(authority, 4)
        fresh = _revoke(authority, regrown, NOW + 2)
        after = authority.held_feed(now=NOW + 2)
        assert after.count == 4 + regrown
        _holds_exactly(after, kept + fresh, lost)
        _holds_exactly(before, kept + lost, fresh)  # the older view says what it said


def test_an_older_view_holds_only_its_own_entries(troth_home: Path) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = _revoke(authority, 3, NOW)
        older = authority.held_feed(now=NOW)
        late = _revoke(authority, 2, NOW + 1)
        newer = authority.held_feed(now=NOW + 1)
        _holds_exactly(older, first, late)
        _holds_exactly(newer, first + late, [])
        assert older.agrees_with(newer)
        assert newer.agrees_with(older)
        again = authority.held_feed(now=NOW + 2, previous=older)  # another line from there
        _holds_exactly(again, first + late, [])


def test_entries_another_connection_appends_are_read(troth_home: Path) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = _revoke(authority, 2, NOW)
        authority.held_feed(now=NOW)
        with open_node("auth") as other:
            hosted = other.hosted_authority()
            assert hosted is not None
            theirs = _revoke(hosted, 3, NOW + 1)
        _holds_exactly(authority.held_feed(now=NOW + 2), first + theirs, [])


def test_views_taken_by_two_threads_while_a_third_revokes(troth_home: Path) -> None:
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        revoked: list[bytes] = []
        views: list[VerifiedFeed] = []
        errors: list[BaseException] = []

        def revoker() -> None:
            for _ in range(20):
                revoked.extend(_revoke(authority, 1, NOW))

        def reader() -> None:
            try:
                for _ in range(20):
                    views.append(authority.held_feed(now=NOW))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=f) for f in (revoker, reader, reader)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        for view in views:
            assert set(view.revoked_credentials) == set(revoked[: view.count])
        final = authority.held_feed(now=NOW + 1)
        assert set(final.revoked_credentials) == set(revoked)


# -- gates 1 and 63f identity 2 ----------------------------------------------------------------

_SCHEMA = """
namespace N {
  @doc("x") entity A in [B, N::C] { a: Long, b?: Set<String> } tags Set<Long>;
  entity B, C in D;
  entity D enum ["x", "y"];
  type T = { c: A };
  action "r", "w" in ["all", N::Action::"top"] appliesTo { principal: [A, B], resource: C,
    context: T };
  action "all"; action top;
}
entity E in [N::A];
"""


def test_every_prefix_of_a_schema_scans_without_an_exception() -> None:
    for end in range(len(_SCHEMA) + 1):
        text = _SCHEMA[:end]
        cedar_refusal(text, schema=True)
        action_hierarchy(text)
        largest_types(text)


def _long_lived_bundle(tmp_path: Path) -> tuple[Identifier, VerifiedFeed, bytes]:
    """63f's authority past 64 changes, its feed (naming its checkpoint) and a bundle it signed
    under its history presented from that checkpoint (63f's `_signed_bundle`)."""
    authority, feed, bundle, _verifier = _signed_bundle(tmp_path)
    return authority, feed, bundle


def test_a_stored_bundles_checkpoint_the_store_does_not_hold_is_refused(tmp_path: Path) -> None:
    authority, feed, bundle = _long_lived_bundle(tmp_path)
    verifier = ChainVerifier(TrustPolicy(frozenset({authority})))
    with pytest.raises(PolicyError) as caught:
        load_stored_bundle(bundle, verifier=verifier, now=LATER, checkpoints=lambda c, h: False)
    assert caught.value.reason is PolicyFailure.SIGNER_INVALID
    store = BundleStore(verifier, checkpoints=lambda c, h: True)  # accepted with the feed
    store.accept(bundle, feeds={authority: feed}, now=LATER)
    reloaded = BundleStore(verifier, store.table, checkpoints=lambda c, h: False)
    reloaded.reload(now=LATER)
    assert reloaded.active(authority) is None


def test_a_stale_feed_attests_no_bundle_signer(tmp_path: Path) -> None:
    """The signer's checkpoint is judged before the feed's freshness: a stale feed names it in
    vain (SIGNER_INVALID, not the later STALE_FEED)."""
    authority, feed, bundle = _long_lived_bundle(tmp_path)
    verifier = ChainVerifier(TrustPolicy(frozenset({authority}), max_feed_staleness=60))
    later = feed.issued_at + 61
    with pytest.raises(PolicyError) as caught:
        verify_bundle(bundle, verifier=verifier, feeds={authority: feed}, now=later)
    assert caught.value.reason is PolicyFailure.SIGNER_INVALID
