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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import T, make_world, rotate, superseding
from tests.support.parties import Party
from troth.credentials import Attributes, CredentialChain, VerifiedCredential, issue_credential
from troth.credentials import wallet as wallet_module
from troth.errors import NotFound
from troth.identity import Identifier, UnverifiedHistory, VerifiedIdentity, verify_history
from troth.node import init_node, open_node

DAY = 86_400
READ = Attributes({"orders.access": "read"})
ADMIN = Attributes({"troth.role": "policy-admin"})


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
