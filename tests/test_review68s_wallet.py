"""Review 68s (adversarial review of 68j's bundle store and wallet fixes), wallet.

Wallet 1. `CredentialWallet.presentable` (what a node shows on its channels: the node's own
identity once per IDENTITY_CACHE window, on the event loop when a handshake finds the cache
expired, and at each channel opened as another local identity) asked `known_changes` of each
row's authority once per row: two store reads (the held feed's supersession, the stored copy
of the authority's history) per row on top of 68j's decode per row. A member holding many
rows of one authority paid them all at every call (10,000 rows: 20,000 reads). The answer is
the same for every row of one authority within the call: it is now asked once per authority
per call, as `sync_due` already was (`_waits`), and each distinct authority history in the
rows' chains is decoded once per call (`authority_changes`' `seen`): 10,000 rows of one
authority, its history stored, ~0.9 s -> ~0.45 s on this (loaded) machine.

Wallet 2 (the bundle store). 68j's store 3 made `BundleStore.accept` a no-op when, under the
lock, it finds the very bytes it verified already active (another thread's accept of them).
A gate's `reload` in another thread activates them too: on a node whose table came back from
a restored copy, the bundle is active but held back (every decision by it denied) until the
same bytes come from someone who knows better (`confirms`: a pull's answer, a reinstall). A
pull's answer verified while a reload activated the table's held-back copy returned as
accepted and confirmed nothing: the node kept denying everything the bundle governs until
another answer came. The no-op under the lock now confirms as the one before it does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gates import T, make_world
from tests.support.parties import make_party
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.gates import BundleStore, MemoryBundleTable, ToolCall
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

DAY = 86_400
READ = Attributes({"orders.access": "read"})
LOOKUP = ToolCall("lookup_order", {"order_id": "o"})


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


# -- wallet 2: the same bytes, activated by a reload meanwhile, confirm nothing -----------------


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


def test_wallet2_the_same_bytes_a_reload_activated_meanwhile_confirm_the_held_back_one() -> None:
    world = make_world()
    data = world.bundle(revision=1)
    authority = world.authority.identifier
    table = _RestoredTable()
    table.save_if_newer(authority.digest, 1, data, T + 5)
    table.back.add(authority.digest)
    reloaded: list[object] = []

    def known(identity: object) -> None:  # a gate's reload in another thread, meanwhile
        if not reloaded:
            reloaded.append(store.reload(now=T + 6))

    store = BundleStore(world.verifier, table, known=known)
    assert store.accept(data, feeds=world.feeds(), now=T + 6).data == data  # a pull's answer
    assert reloaded == [[store.active(authority).bundle]]  # type: ignore[union-attr]
    assert not store.held_back(authority)
    assert table.held_back() == frozenset()
    member = world.credential(world.support_chain, world.support, now=T + 7)
    assert world.point(store).decide(member, LOOKUP, now=T + 7).allowed
