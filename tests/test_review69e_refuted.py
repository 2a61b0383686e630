"""Review 69e (second review of the policy bundle store and the wallet's rows): attacks that did
not work. Each test is a real attempt and fails if the defence it names breaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gates import POLICIES, T, make_world, rotate, superseding
from troth import limits
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.crypto import sha256
from troth.errors import NotFound, PolicyError, PolicyFailure
from troth.gates import BundleStore, SqliteBundleTable
from troth.gates.bundles import resign_bundle
from troth.node import init_node, open_node
from troth.storage.sqlite import SqliteDatabase

_P = PolicyFailure
DAY = 86_400
READ = Attributes({"orders.access": "read"})


# -- what the signing side may make, the node accepts (and nothing more) -----------------------


def test_a_bundle_at_the_policy_text_limit_signs_and_loads_after_a_restart(
    tmp_path: Path,
) -> None:
    """Policy text of exactly MAX_POLICY_TEXT characters: signed, accepted into node.db and
    loaded again by a fresh store on it; one character more, or the same count of two-byte
    characters (over MAX_POLICY_BUNDLE_BYTES signed), is refused by the signer, not left for
    every node to refuse."""
    world = make_world()
    pad = limits.MAX_POLICY_TEXT - len(POLICIES) - len("// \n")
    text = f"{POLICIES}// {'x' * pad}\n"
    data = world.bundle(policies=text)
    path = tmp_path / "node.db"
    store = BundleStore(world.verifier, SqliteBundleTable(SqliteDatabase(path), now=T + 5))
    store.accept(data, feeds=world.feeds(), now=T + 5)
    fresh = BundleStore(world.verifier, SqliteBundleTable(SqliteDatabase(path), now=T + 6))
    assert [b.data for b in fresh.reload(now=T + 6)] == [data]
    for over in (text + "x", f"{POLICIES}// {'é' * pad}\n"):
        with pytest.raises(PolicyError) as caught:
            world.bundle(policies=over)
        assert caught.value.reason is _P.OVER_LIMIT


# -- two processes accepting two bundles of one revision at once -------------------------------


@pytest.mark.parametrize("low_first", [True, False])
def test_two_processes_storing_two_bundles_of_one_revision_end_on_the_lower_digest(
    tmp_path: Path, low_first: bool
) -> None:
    """Two stores on their own connections to one node.db, each holding revision 1, accept
    two different bundles of revision 2: whichever commits first, the table ends on the lower
    digest (a compare-and-set), the other store is refused or replaced, and both decide by
    the lower one after a reload."""
    world = make_world()
    one, two = (world.bundle(revision=2, policies=f"{POLICIES}// {n}\n") for n in range(2))
    low, high = sorted((one, two), key=sha256)
    path = tmp_path / "node.db"
    stores = [
        BundleStore(world.verifier, SqliteBundleTable(SqliteDatabase(path), now=T + 5))
        for _ in range(2)
    ]
    stores[0].accept(world.bundle(revision=1), feeds=world.feeds(), now=T + 5)
    stores[1].reload(now=T + 5)
    first, second = (low, high) if low_first else (high, low)
    stores[0].accept(first, feeds=world.feeds(), now=T + 6)
    if low_first:
        with pytest.raises(PolicyError):
            stores[1].accept(second, feeds=world.feeds(), now=T + 6)
    else:
        stores[1].accept(second, feeds=world.feeds(), now=T + 6)
    for store in stores:
        store.reload(now=T + 7)
        held = store.active(world.authority.identifier)
        assert held is not None
        assert held.bundle.data == low
    assert stores[0].table.load(world.authority.identifier.digest) == low


# -- expiry exactly at now: expired ------------------------------------------------------------


def test_a_bundle_expiring_exactly_now_decides_nothing_and_is_not_accepted() -> None:
    world = make_world()
    data = world.bundle(revision=1, ttl=1_000)
    store = world.store(data)
    world.refresh_feed(T + 990)
    feed = world.feed
    authority = world.authority.identifier
    store.engine(authority, feed=feed, now=T + 999)  # in force a second before
    with pytest.raises(PolicyError) as caught:
        store.engine(authority, feed=feed, now=T + 1_000)
    assert caught.value.reason is _P.EXPIRED
    with pytest.raises(PolicyError) as caught:
        world.store().accept(data, feeds=world.feeds(), now=T + 1_000)
    assert caught.value.reason is _P.EXPIRED


def test_a_held_chain_expiring_exactly_now_is_neither_shown_nor_chosen(tmp_path: Path) -> None:
    world = make_world()
    acme = world.authority
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        credential = issue_credential(
            acme.signer, subject=me.identifier, attributes=READ, now=T, ttl=DAY, depth=2
        )
        chain = CredentialChain((credential,), (acme.identity.history,)).encode()
        node.wallet.hold("me", chain, now=T + 5)
        assert node.wallet.best("me", now=T + DAY - 1) == chain
        assert node.wallet.presentable("me", now=T + DAY) == []
        with pytest.raises(NotFound):
            node.wallet.best("me", now=T + DAY)


# -- a bundle signed by the authority's key rotated away ---------------------------------------


def test_a_bundle_signed_by_a_rotated_away_authority_key_is_refused_and_stops_deciding(
    tmp_path: Path,
) -> None:
    """The authority rotates (a stolen key): its feed supersedes the old history. A bundle the
    old key signs after that, of a higher revision, is refused; the one it signed before,
    stored, loads after a restart but decides nothing; the authority's re-signed bundle (under
    its new history, one revision up) replaces it."""
    world = make_world()
    acme = world.authority
    before = world.bundle(revision=1, now=T)
    path = tmp_path / "node.db"
    BundleStore(world.verifier, SqliteBundleTable(SqliteDatabase(path), now=T + 5)).accept(
        before, feeds=world.feeds(), now=T + 5
    )
    rotated, signer = rotate(world, acme, T + 100)
    feed = superseding(signer, rotated, acme, T + 150)
    feeds = {acme.identifier: feed}
    thief = world.bundle(revision=7, now=T + 200)  # the old key, after the rotation
    store = BundleStore(world.verifier, SqliteBundleTable(SqliteDatabase(path), now=T + 300))
    with pytest.raises(PolicyError) as caught:
        store.accept(thief, feeds=feeds, now=T + 300)
    assert caught.value.reason is _P.SIGNER_SUPERSEDED
    assert [b.data for b in store.reload(now=T + 300)] == [before]  # loads: judged per decision
    with pytest.raises(PolicyError) as caught:
        store.engine(acme.identifier, feed=feed, now=T + 300)
    assert caught.value.reason is _P.SIGNER_SUPERSEDED
    again = resign_bundle(before, signer.signer, now=T + 300)
    assert store.accept(again, feeds=feeds, now=T + 300).body.revision == 2
    store.engine(acme.identifier, feed=feed, now=T + 301)
