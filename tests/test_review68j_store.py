"""Review 68j (adversarial review of policy bundle storage and the credential wallet), store.

Store 1. `BundleStore.reload` runs outside the store's lock (a gate sharing the node's table
calls it before each decision, from any worker thread). A table bundle that does not load at
`now` (expired, not yet valid, or its policies not checked) is noted as dormant
(`DormantBundles`: it puts the active one out of force). When an `accept` in another thread
stored and activated a bundle in its place while the reload read and verified it (the table's
revision 1 expired; a pull's answer, revision 1 again and in force, replaced it), the reload
noted the replaced bundle after that accept's commit had dropped it: the bundle just accepted
then decided nothing ("the bundle expired"), for good (the next reload found the table's stamp
already seen), and `troth policy show` said the table's bundle did not load. `reload` now
notes a bundle as dormant only while the table still holds it, read again under the lock
(`BundleStore._not_loaded`, as `_activate_stored` does).

Store 2. `CredentialWallet.best` and `presentable` chose among the wallet's rows by the row's
own `expires_at` and never looked at whose chain the row held. A row edited by hand (its
expiry put later than its chain's) or another identity's chain put in the wallet's file (a
row for this identity) was chosen over the identity's own valid credential: `troth credential
export` handed it out, `troth policy sign` took it as the admin chain (`best(needs=...)`
checks signatures and attributes, not the subject), and the node showed it on every channel,
where a peer refuses the whole channel for a credential that does not verify — the node was
cut off from every node trusting that authority. The rows chosen from are now those whose
chain decodes, ends with a credential to the row's identity with the row's id and is rooted
at the row's authority, unexpired by its links (`troth.credentials.held_rows.live_held`).
`needs_refresh` read the rows' expiry too: a row whose expiry was put later kept the node from
asking for a fresh credential until its own had expired; it reads the chains' (`by_chain`).

Store 3. Two threads accepting the same bundle at once (a push and a pull's answer, or two
pulls): both passed the no-op check for the bytes already active before either verified, and
the second, under the lock, found those very bytes held and was refused SAME_REVISION ("the
held bundle of that revision has the lower digest" — its own digest), recorded as a conflict
of the authority signing two bundles of one revision (`conflicts`, `conflicts_noted`: the node
logs it). `accept` now checks for the same bytes again under the lock: a no-op.
"""

from __future__ import annotations

import threading
from pathlib import Path

from tests.support.gates import T, make_world
from tests.support.parties import Party, make_party
from troth.credentials import Attributes, CredentialChain, issue_credential
from troth.credentials.format import CredentialBody
from troth.credentials.wallet import needs_refresh
from troth.gates import BundleStore, MemoryBundleTable, ToolCall
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.storage import HeldCredential
from troth.vault import SoftwareVault

DAY = 86_400
READ = Attributes({"orders.access": "read"})
LOOKUP = ToolCall("lookup_order", {"order_id": "o"})


class _ReadThenWait(MemoryBundleTable):
    """A table whose first `load` from the reloading thread reads the bundle, then waits
    until the other thread's `accept` is done (that thread's loads pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.reloading: threading.Thread | None = None
        self.read = threading.Event()
        self.accepted = threading.Event()

    def load(self, authority: bytes) -> bytes | None:
        data = super().load(authority)
        if threading.current_thread() is self.reloading and not self.read.is_set():
            self.read.set()
            self.accepted.wait(5)
        return data


def test_store1_a_bundle_accepted_during_a_reload_is_not_put_out_of_force() -> None:
    world = make_world()
    table = _ReadThenWait()
    BundleStore(world.verifier, table).accept(
        world.bundle(revision=1, ttl=100), feeds=world.feeds(), now=T + 5
    )
    answer = world.bundle(revision=1, now=T + 150)  # revision 1 again, in force
    running = BundleStore(world.verifier, table)
    reload = threading.Thread(target=running.reload, kwargs={"now": T + 200})
    table.reloading = reload
    reload.start()
    assert table.read.wait(5)
    world.refresh_feed(T + 199)
    running.accept(answer, feeds=world.feeds(), now=T + 200)  # a pull's answer, meanwhile
    table.accepted.set()
    reload.join(5)
    assert not reload.is_alive()
    member = world.credential(world.support_chain, world.support, now=T + 201)
    decision = world.point(running).decide(member, LOOKUP, now=T + 201)
    assert decision.allowed, decision.reason
    assert running.reload(now=T + 202) == []
    assert running.dormant.unloaded() == []  # `troth policy show`: nothing failed to load
    assert world.point(running).decide(member, LOOKUP, now=T + 203).allowed


# -- store 2: rows that are not what they say ------------------------------------------------


def _chain(authority: Party, subject: Identifier, ttl: int) -> bytes:
    credential = issue_credential(
        authority.signer, subject=subject, attributes=READ, now=T, ttl=ttl, depth=2
    )
    return CredentialChain((credential,), (authority.identity.history,)).encode()


def _put_row(node: Node, ref: str, chain: bytes, expires_at: int) -> None:
    """Write a row for local identity `ref` straight into the wallet's file (a hand edit)."""
    decoded = CredentialChain.decode(chain)
    root = CredentialBody.decode(decoded.credentials[0].body).issuer
    row = HeldCredential(
        node.identities.find(ref).identifier,
        decoded.credentials[-1].hash,
        chain,
        root.digest,
        expires_at,
    )
    node.wallet.store.put_held(row, T)


def _wallet(tmp_path: Path) -> tuple[Party, Path]:
    init_node("n", home=tmp_path)
    return make_party(SoftwareVault(), now=T), tmp_path


def test_store2_another_identitys_chain_in_the_wallet_file_is_not_chosen(tmp_path: Path) -> None:
    acme, home = _wallet(tmp_path)
    with open_node("n", home=home) as node:
        me = node.identities.create(now=T, name="me")
        other = node.identities.create(now=T, name="other")
        own = _chain(acme, me.identifier, 5 * DAY)
        node.wallet.hold("me", own, now=T + 5)
        _put_row(node, "me", _chain(acme, other.identifier, 20 * DAY), T + 20 * DAY)
        assert node.wallet.best("me", now=T + 10) == own
        assert node.wallet.best("me", now=T + 10, needs=READ) == own
        assert [h.chain for h in node.wallet.presentable("me", now=T + 10)] == [own]


def test_store2_a_row_whose_expiry_was_put_later_is_not_chosen(tmp_path: Path) -> None:
    acme, home = _wallet(tmp_path)
    with open_node("n", home=home) as node:
        me = node.identities.create(now=T, name="me")
        own = _chain(acme, me.identifier, 5 * DAY)
        node.wallet.hold("me", own, now=T + 5)
        _put_row(node, "me", _chain(acme, me.identifier, 100), T + 30 * DAY)  # expired at T+100
        at = T + 1_000
        assert node.wallet.best("me", now=at) == own
        (shown,) = node.wallet.presentable("me", now=at)
        assert shown.chain == own
        assert shown.expires_at == T + 5 * DAY


def test_store2_a_row_of_undecodable_bytes_is_shown_to_no_peer(tmp_path: Path) -> None:
    acme, home = _wallet(tmp_path)
    with open_node("n", home=home) as node:
        me = node.identities.create(now=T, name="me")
        own = _chain(acme, me.identifier, 5 * DAY)
        node.wallet.hold("me", own, now=T + 5)
        row = HeldCredential(
            node.identities.find("me").identifier,
            b"\x01" * 32,
            b"\xa1\x01",
            acme.identifier.digest,
            T + 9 * DAY,
        )
        node.wallet.store.put_held(row, T)
        assert [h.chain for h in node.wallet.presentable("me", now=T + 10)] == [own]
        assert node.wallet.best("me", now=T + 10) == own


# -- store 3: the same bundle accepted by two threads at once ---------------------------------


def test_store3_the_same_bundle_accepted_twice_at_once_is_no_conflict() -> None:
    """A push and a pull's answer bring the same bundle at once: the second accept, verified
    while the first activated it, is the no-op the same bytes again are, not a refusal."""
    world = make_world()
    data = world.bundle(revision=1)
    seen: list[object] = []

    def known(identity: object) -> None:  # called while the first accept verifies
        if not seen:
            seen.append(identity)
            store.accept(data, feeds=world.feeds(), now=T + 5)  # the other thread's

    store = BundleStore(world.verifier, known=known)
    assert store.accept(data, feeds=world.feeds(), now=T + 5).data == data
    assert seen
    assert store.conflicts() == []
    assert store.conflicts_noted == 0


def test_store2_a_row_whose_expiry_was_put_later_does_not_put_off_a_refresh(
    tmp_path: Path,
) -> None:
    acme, home = _wallet(tmp_path)
    with open_node("n", home=home) as node:
        me = node.identities.create(now=T, name="me")
        node.wallet.hold("me", _chain(acme, me.identifier, DAY), now=T + 5)
        _put_row(node, "me", _chain(acme, me.identifier, 2 * DAY), T + 300 * DAY)
        held = node.wallet.held("me")
        assert needs_refresh(held, acme.identifier, None, T + 2 * DAY - 100, 3600)
