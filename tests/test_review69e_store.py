"""Review 69e (second adversarial review of the policy bundle store and the wallet's rows:
68j, 68s), store.

Store 1. `supersedes_an_issuer` (what `CredentialWallet.best` and the node's channel identity
pass a held chain through: a chain carrying an issuer history the authority's feed supersedes
verifies nowhere) verified every history the feed names a supersession of, once per row: an
authority that rotated (the very case in which its feed holds a supersession) has every one of
its members' rows carry its history, the old one or the new one, and each row's copy was
verified again (~0.7 ms a row here: 10,000 renewals or delegations, ~7 s at each channel
identity the node made, and at each `best` that passed over the rows issued before the
rotation). A caller judging many rows now passes one memo (`seen`): each distinct history
(by its bytes, per authority) is verified and judged once per call.

Store 2. `CredentialWallet.best(needs=...)` (the admin chain `troth policy sign` takes, a
delegation's parent) verified each row in full (every link's signature, every history it
carries: ~1.4 ms a row here) to compare its attributes with `needs`, though a chain verifies to
its last link's attributes, which the row's own bytes state: 10,000 rows none of which covers
them, ~14 s before NotFound. A row whose last link lacks one is now passed over before it is
verified (`held_rows.claims_cover`); what it verifies to is still checked.

Store 3. A bundle held back (its node.db restored from a copy) that did not activate at the
reload (not yet valid then: the node restarted with its clock behind; its policies not
checked) was refused ROLLBACK ("a newer revision is stored: reload") when the very same bytes
came back from someone who knows better (a pull's answer, a reinstall), and confirmed nothing:
the promise is that the same bytes accepted again let it decide (docs/policy.md). The node went
on denying until the next reload activated it and a later answer confirmed it. `accept` now
confirms and activates it (`_replace_stored`: the table's bundle is the one given).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T, make_world, rotate, superseding
from tests.support.parties import Party
from troth.credentials import Attributes, CredentialChain, VerifiedCredential, issue_credential
from troth.credentials import wallet as wallet_module
from troth.errors import NotFound, PolicyError, PolicyFailure
from troth.gates import BundleStore, MemoryBundleTable, ToolCall
from troth.identity import Identifier, UnverifiedHistory, VerifiedIdentity, verify_history
from troth.node import init_node, open_node

DAY = 86_400
READ = Attributes({"orders.access": "read"})
ADMIN = Attributes({"troth.role": "policy-admin"})
LOOKUP = ToolCall("lookup_order", {"order_id": "o"})


def _chain(party: Party, subject: Identifier, ttl: int, history: bytes) -> bytes:
    credential = issue_credential(
        party.signer, subject=subject, attributes=READ, now=T + 200, ttl=ttl, depth=2
    )
    return CredentialChain((credential,), (history,)).encode()


def test_store1_best_verifies_each_history_once_not_once_per_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty rows issued before the authority rotated (expiring later: first in the store's
    order) and one after: `best` passes over the twenty, superseded, and takes the new one,
    verifying the old history once and the new one once."""
    world = make_world()
    acme = world.authority
    old_history = acme.identity.history
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        for i in range(20):
            old = _chain(acme, me.identifier, 9 * DAY + i, old_history)
            node.wallet.hold("me", old, now=T + 201)
        rotated, signer = rotate(world, acme, T + 100)
        fresh = _chain(signer, me.identifier, 5 * DAY, rotated.history)
        node.wallet.hold("me", fresh, now=T + 201)
        feed = superseding(signer, rotated, acme, T + 150)
        monkeypatch.setattr(
            node.wallet, "held_feed", lambda a: feed if a == acme.identifier else None
        )
        verified: list[int] = []
        verify = verify_history

        def counted(data: UnverifiedHistory, **kwargs: Any) -> VerifiedIdentity:
            verified.append(len(data.changes))
            return verify(data, **kwargs)

        monkeypatch.setattr(wallet_module, "verify_history", counted)
        assert node.wallet.best("me", now=T + 300) == fresh
        assert verified == [1, 2]  # the old history, then the new one: each once


def test_store2_best_verifies_no_row_whose_own_leaf_lacks_the_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty read-only rows, one policy-admin row expiring first (last in the store's order):
    `best(needs=policy-admin)` (the admin chain `troth policy sign` takes, a delegation's
    parent) verifies the admin row alone, not the twenty whose own leaf lacks the role."""
    world = make_world()
    acme = world.authority
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        for i in range(20):
            chain = _chain(acme, me.identifier, 9 * DAY + i, acme.identity.history)
            node.wallet.hold("me", chain, now=T + 201)
        admin = issue_credential(
            acme.signer, subject=me.identifier, attributes=ADMIN, now=T + 200, ttl=DAY, depth=2
        )
        admin_chain = CredentialChain((admin,), (acme.identity.history,)).encode()
        node.wallet.hold("me", admin_chain, now=T + 201)
        inspected: list[bytes] = []
        inspect = node.wallet.inspect

        def counted(chain: bytes, *, now: int) -> VerifiedCredential:
            inspected.append(chain)
            return inspect(chain, now=now)

        monkeypatch.setattr(node.wallet, "inspect", counted)
        assert node.wallet.best("me", now=T + 300, needs=ADMIN) == admin_chain
        assert inspected == [admin_chain]
        with pytest.raises(NotFound):
            node.wallet.best("me", now=T + 300, needs=Attributes({"orders.access": "write"}))
        assert inspected == [admin_chain]  # nothing claims write: nothing verified


class _RestoredTable(MemoryBundleTable):
    """A table restored from a copy: every bundle it holds is held back until confirmed."""

    def __init__(self) -> None:
        super().__init__()
        self.back: set[bytes] = set()

    def held_back(self) -> frozenset[bytes]:
        return frozenset(self.back)

    def confirm(self, authority: bytes) -> bool:
        was = authority in self.back
        self.back.discard(authority)
        return was


def test_store3_the_same_bytes_confirm_a_held_back_bundle_that_did_not_load_at_reload() -> None:
    """node.db restored: revision 1, issued at T + 1000, held back. The node restarts with its
    clock behind (T: not yet valid, not activated); set right, a pull's answer brings those
    bytes again: they decide."""
    world = make_world()
    data = world.bundle(revision=1, now=T + 1_000)
    authority = world.authority.identifier
    table = _RestoredTable()
    table.save_if_newer(authority.digest, 1, data, T + 1_000)
    table.back.add(authority.digest)
    store = BundleStore(world.verifier, table)
    assert store.reload(now=T) == []  # not yet valid: nothing active
    world.refresh_feed(T + 1_005)
    assert store.accept(data, feeds=world.feeds(), now=T + 1_005).data == data
    assert not store.held_back(authority)
    assert table.held_back() == frozenset()
    member = world.credential(world.support_chain, world.support, now=T + 1_006)
    assert world.point(store).decide(member, LOOKUP, now=T + 1_006).allowed


def test_store3_a_members_copy_of_the_held_back_bytes_still_confirms_nothing() -> None:
    """The same, the bytes from a member's copy (`confirms` False): refused, still held
    back (review 54t, policy 1)."""
    world = make_world()
    data = world.bundle(revision=1, now=T + 1_000)
    authority = world.authority.identifier
    table = _RestoredTable()
    table.save_if_newer(authority.digest, 1, data, T + 1_000)
    table.back.add(authority.digest)
    store = BundleStore(world.verifier, table)
    store.reload(now=T)
    world.refresh_feed(T + 1_005)
    with pytest.raises(PolicyError) as caught:
        store.accept(data, feeds=world.feeds(), now=T + 1_005, confirms=False)
    assert caught.value.reason is PolicyFailure.RESTORED
    assert table.held_back() == frozenset({authority.digest})
