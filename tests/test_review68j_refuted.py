"""Review 68j (policy bundle storage and the credential wallet): attacks that did not work.
Each test is a real attempt and fails if the defence it names breaks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.gates import POLICIES, T, make_world
from tests.support.parties import make_party
from troth import limits
from troth.credentials import Attributes, CredentialChain, RevocationKind, issue_credential
from troth.crypto import sha256
from troth.errors import CredentialError, CredentialFailure, PolicyError, PolicyFailure
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.gates import BundleStore, MemoryBundleTable, SqliteBundleTable, ToolCall
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.storage.sqlite import SqliteDatabase
from troth.vault import SoftwareVault

_P = PolicyFailure
DAY = 86_400
READ = Attributes({"orders.access": "read"})
LOOKUP = ToolCall("lookup_order", {"order_id": "o"})
NO_LOOKUP = (
    '@id("no-lookup") forbid(principal, action == Action::"invoke:lookup_order", resource);\n'
)


# -- bundles replayed from a stolen backup -----------------------------------------------------


def test_an_older_revision_from_a_backup_is_a_rollback_in_memory_and_in_the_table() -> None:
    world = make_world()
    old = world.bundle(revision=1)
    store = world.store(old, world.bundle(revision=2, policies=POLICIES + NO_LOOKUP))
    with pytest.raises(PolicyError) as caught:
        store.accept(old, feeds=world.feeds(), now=T + 6)
    assert caught.value.reason is _P.ROLLBACK
    fresh = BundleStore(world.verifier, store.table)  # another process on the same table
    with pytest.raises(PolicyError) as caught:
        fresh.accept(old, feeds=world.feeds(), now=T + 6)
    assert caught.value.reason is _P.ROLLBACK
    member = world.credential(world.support_chain, world.support)
    assert not world.point(store).decide(member, LOOKUP, now=T + 10).allowed


def test_the_same_revision_of_a_higher_digest_does_not_replace_the_held_one() -> None:
    world = make_world()
    one, two = (world.bundle(revision=1, policies=f"{POLICIES}// {n}\n") for n in range(2))
    low, high = sorted((one, two), key=sha256)
    store = world.store(low)
    with pytest.raises(PolicyError) as caught:
        store.accept(high, feeds=world.feeds(), now=T + 6)
    assert caught.value.reason is _P.SAME_REVISION
    assert store.table.load(world.authority.identifier.digest) == low


def test_a_bundle_signed_under_a_revoked_admin_credential_is_refused() -> None:
    world = make_world()
    store = world.store(world.bundle(revision=1))
    admin_link = CredentialChain.decode(world.admin_chain).credentials[0].hash
    world.revoke(RevocationKind.CREDENTIAL, admin_link, now=T + 6)
    by_admin = world.bundle(revision=2, by_admin=True, now=T + 6)
    with pytest.raises(PolicyError) as caught:
        store.accept(by_admin, feeds=world.feeds(), now=T + 7)
    assert caught.value.reason is _P.SIGNER_REVOKED
    assert store.table.revisions() == {world.authority.identifier.digest: 1}


def test_another_fleets_bundle_is_refused_and_stores_nothing() -> None:
    world, other = make_world(), make_world()
    store = world.store(world.bundle(revision=1))
    with pytest.raises(PolicyError) as caught:
        store.accept(other.bundle(revision=9), feeds=other.feeds(), now=T + 6)
    assert caught.value.reason is _P.UNTRUSTED_AUTHORITY
    assert set(store.table.revisions()) == {world.authority.identifier.digest}


def test_an_oversized_or_deep_bundle_is_refused_on_its_decoding() -> None:
    store = make_world().store()
    for junk in (
        b"\x00" * (limits.MAX_POLICY_BUNDLE_BYTES + 1),
        b"\x81" * 100_000 + b"\x00",  # arrays nested 100,000 deep
    ):
        with pytest.raises(PolicyError):
            store.accept(junk, feeds={}, now=T + 6)
    assert store.table.revisions() == {}


# -- two threads, and a crash mid-install ------------------------------------------------------


def test_threads_installing_and_reloading_at_once_never_roll_back() -> None:
    """Six revisions accepted from three threads in an order that lowers them, while two other
    stores on the same table reload: every store ends on the top revision."""
    world = make_world()
    bundles = [world.bundle(revision=r) for r in range(1, 7)]
    table = MemoryBundleTable()
    running, other = BundleStore(world.verifier, table), BundleStore(world.verifier, table)
    readers = [BundleStore(world.verifier, table) for _ in range(2)]

    refused: list[PolicyFailure] = []

    def install(order: list[bytes]) -> None:
        for data in order:
            for store in (running, other):
                try:
                    store.accept(data, feeds=world.feeds(), now=T + 6)
                except PolicyError as exc:
                    refused.append(exc.reason)

    def reload(store: BundleStore) -> None:
        for _ in range(6):
            store.reload(now=T + 6)

    threads = [
        threading.Thread(target=install, args=(bundles[::-1],)),
        threading.Thread(target=install, args=(bundles,)),
        threading.Thread(target=install, args=(bundles[1::2] + bundles[::2],)),
        *(threading.Thread(target=reload, args=(store,)) for store in readers),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    for store in (running, other, *readers):
        store.reload(now=T + 7)
        held = store.active(world.authority.identifier)
        assert held is not None
        assert held.bundle.body.revision == 6
    assert table.revisions() == {world.authority.identifier.digest: 6}
    assert set(refused) <= {_P.ROLLBACK}  # never SAME_REVISION for the same bytes (store 3)


_CHILD = """
import sys
from pathlib import Path
from troth.gates.bundle_tables import SqliteBundleTable
from troth.storage.sqlite import SqliteDatabase
path, authority, data = Path(sys.argv[1]), bytes.fromhex(sys.argv[2]), Path(sys.argv[3])
table = SqliteBundleTable(SqliteDatabase(path), now=int(sys.argv[4]))
table.save_if_newer(authority, 2, data.read_bytes(), int(sys.argv[4]))
"""


@pytest.mark.parametrize(("point", "revision"), [("before-commit", 1)])  # after: 45f
def test_a_kill_mid_install_leaves_the_old_or_the_new_bundle(
    tmp_path: Path, point: str, revision: int
) -> None:
    world = make_world()
    path, newer = tmp_path / "node.db", tmp_path / "newer.bundle"
    db = SqliteDatabase(path)
    BundleStore(world.verifier, SqliteBundleTable(db, now=T + 5)).accept(
        world.bundle(revision=1), feeds=world.feeds(), now=T + 5
    )
    db.close()
    newer.write_bytes(world.bundle(revision=2, policies=POLICIES + NO_LOOKUP))
    env = {**os.environ, CRASH_ENV: f"node.policy-bundle.{point}"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    args = [str(path), world.authority.identifier.digest.hex(), str(newer), str(T + 6)]
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, timeout=60)
    assert done.returncode == CRASH_EXIT_CODE
    store = BundleStore(world.verifier, SqliteBundleTable(SqliteDatabase(path), now=T + 7))
    store.reload(now=T + 7)
    held = store.active(world.authority.identifier)
    assert held is not None
    assert held.bundle.body.revision == revision
    member = world.credential(world.support_chain, world.support)
    decision = world.point(store).decide(member, LOOKUP, now=T + 10)
    assert decision.allowed is (revision == 1)  # revision 2 forbids lookups
    assert (
        not world.point(store).decide(member, ToolCall("export_customers", {}), now=T + 10).allowed
    )


# -- the wallet --------------------------------------------------------------------------------


def test_the_wallet_holds_no_chain_for_another_identity_and_prefers_a_valid_one(
    tmp_path: Path,
) -> None:
    acme = make_party(SoftwareVault(), now=T)
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        me = node.identities.create(now=T, name="me")
        other = node.identities.create(now=T, name="other")

        def chain(subject: Identifier, ttl: int) -> bytes:
            credential = issue_credential(
                acme.signer, subject=subject, attributes=READ, now=T, ttl=ttl, depth=2
            )
            return CredentialChain((credential,), (acme.identity.history,)).encode()

        with pytest.raises(CredentialError) as caught:
            node.wallet.hold("me", chain(other.identifier, DAY), now=T + 5)
        assert caught.value.reason is CredentialFailure.WRONG_SUBJECT
        valid = chain(me.identifier, 5 * DAY)
        node.wallet.hold("me", valid, now=T + 5)
        node.wallet.hold("me", chain(me.identifier, 100), now=T + 5)
        assert node.wallet.best("me", now=T + 200) == valid
        assert [h.chain for h in node.wallet.presentable("me", now=T + 200)] == [valid]
        with pytest.raises(CredentialError) as caught:  # a hand-edited chain: a typed error
            node.wallet.inspect(b"\xa1\x01", now=T + 200)
        assert caught.value.reason is CredentialFailure.MALFORMED
