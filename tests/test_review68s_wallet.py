"""Review 68s (adversarial review of 68j's bundle store and wallet fixes), wallet.

Wallet 1. `CredentialWallet.presentable` (what a node shows on its channels: the node's own
identity once per IDENTITY_CACHE window, on the event loop when a handshake finds the cache
expired, and at each channel opened as another local identity) asked `known_changes` of each
row's authority once per row: two store reads (the held feed's supersession, the stored copy
of the authority's history) per row on top of 68j's decode per row. A member holding many
rows of one authority paid them all at every call (10,000 rows: 20,000 reads). The answer is
the same for every row of one authority within the call: it is now asked once per authority
per call, as `sync_due` already was (`_waits`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gates import T
from tests.support.parties import make_party
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

DAY = 86_400
READ = Attributes({"orders.access": "read"})


def test_wallet1_presentable_asks_each_authoritys_history_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = make_party(SoftwareVault(), now=T)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")

        def chain(ttl: int) -> bytes:
            credential = issue_credential(
                acme.signer, subject=me.identifier, attributes=READ, now=T, ttl=ttl, depth=2
            )
            return CredentialChain((credential,), (acme.identity.history,)).encode()

        chains = [chain(5 * DAY + i) for i in range(20)]
        for data in chains:  # twenty renewals, all unexpired
            node.wallet.hold("me", data, now=T + 5)
        asked: list[Identifier] = []
        stored_changes = node.identities.stored_changes

        def counted(authority: Identifier) -> int | None:
            asked.append(authority)
            return stored_changes(authority)

        monkeypatch.setattr(node.identities, "stored_changes", counted)
        shown = node.wallet.presentable("me", now=T + 10)
        assert [h.chain for h in shown] == chains[::-1]  # the one that expires last first
        assert asked == [acme.identifier]
