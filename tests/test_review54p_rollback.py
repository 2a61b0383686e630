"""Review 54p, rollback 1: a node.db restored from a copy taken before a newer policy bundle
was installed brought the older bundle back unseen: the rollback guard counted only the
`authority` and `broker` scopes, so nothing found or recorded the restore, and a member's node
restored alone decided by the older bundle until its next successful pull (review 54h noted
it; troth.storage.rollback, docs/storage.md "Rollback guard")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.gates import GatesWorld, T, make_world
from tests.support.nodes import MemNet, run_memnet
from tests.test_gates_distribution import bundle, revision_of, until
from tests.test_review45f_policy import bundles, held, push
from troth.clock import SystemClock
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import DecodeError, PolicyError, PolicyFailure
from troth.gates import BundleStore, PolicyDecision, SqliteBundleTable, ToolCall
from troth.node import open_node
from troth.node.runtime import NodeRuntime
from troth.node.services.policy import install_bundle, stored_bundles
from troth.storage import SqliteDatabase
from troth.storage.rollback import (
    GUARD_SLOT_BYTES,
    GUARD_VERSION,
    RollbackGuard,
    decode_slot,
    encode_guard,
    encode_slot,
    guard_path,
    read_guard,
    restored_rows,
)

SERVICES = {"orders": ["read"]}


def test_a_copy_from_before_a_newer_bundle_is_found_and_decides_nothing(
    troth_home: Path, tmp_path: Path
) -> None:
    first, second = bundles(troth_home, tmp_path)
    clock = SystemClock()
    install_bundle(troth_home, "acme", first.read_bytes(), clock=clock)
    path, copy = node_db(troth_home, "acme"), tmp_path / "copy.db"
    copy_db(path, copy)
    install_bundle(troth_home, "acme", second.read_bytes(), clock=clock)
    restore_db(path, copy)
    shown = stored_bundles(troth_home, "acme", clock=clock)  # opens the node's bundles
    with open_node("acme", home=troth_home) as node:
        found = [row.to_json() for row in restored_rows(node.db)]
    assert [row["scope"] for row in found] == ["policy"]  # found, and recorded once
    assert not [bundle for bundle in shown if bundle["in_force"]]  # revision 1 decides nothing


# -- the held-back bundles: found once, denied until confirmed ---------------------------------


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


def _restored_table(world: GatesWorld, tmp_path: Path) -> tuple[SqliteDatabase, Path]:
    """node.db holding revision 1 (which declares service `orders`), then 2, put back to the
    copy holding 1: the restored database (its path)."""
    tmp_path.mkdir(exist_ok=True)
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db = SqliteDatabase(path)
    store = BundleStore(world.verifier, SqliteBundleTable(db))
    store.accept(world.bundle(revision=1, services=SERVICES), feeds=world.feeds(), now=T + 5)
    copy_db(path, copy)
    store.accept(world.bundle(revision=2, services=SERVICES), feeds=world.feeds(), now=T + 5)
    db.close()
    assert read_guard(guard_path(path)) == {"policy": 2}
    restore_db(path, copy)
    return SqliteDatabase(path), path


def _decides(world: GatesWorld, store: BundleStore) -> PolicyDecision:
    member = world.credential(world.support_chain, world.support)
    return world.point(store).decide(
        member, ToolCall("lookup_order", {"order_id": "o"}), now=T + 10
    )


def test_a_restored_bundle_is_held_back_until_installed_again(
    world: GatesWorld, tmp_path: Path
) -> None:
    db, _ = _restored_table(world, tmp_path)
    table = SqliteBundleTable(db, now=T + 6)
    assert table.restored is not None
    assert (table.restored.scope, table.restored.counter, table.restored.guard) == ("policy", 1, 2)
    assert table.restored.voided == 1
    assert SqliteBundleTable(db, now=T + 7).restored is None  # found once
    store = BundleStore(world.verifier, table)
    assert [b.body.revision for b in store.reload(now=T + 8)] == [1]
    assert store.declares("orders")  # the service stays under Cedar, which denies
    decision = _decides(world, store)
    assert not decision.allowed
    assert "restored copy" in str(decision.reason)
    with pytest.raises(PolicyError) as caught:
        store.engine(world.authority.identifier, feed=world.feed, now=T + 10)
    assert caught.value.reason is PolicyFailure.RESTORED
    # another process (a restart) holds it back too, until the same bytes are installed again
    again = BundleStore(world.verifier, SqliteBundleTable(db, now=T + 9))
    again.reload(now=T + 9)
    assert not _decides(world, again).allowed
    again.accept(world.bundle(revision=1, services=SERVICES), feeds=world.feeds(), now=T + 9)
    assert (_decides(world, again).allowed, _decides(world, again).revision) == (True, 1)
    assert store.reload(now=T + 10) == []  # the first store reads the confirmation
    assert _decides(world, store).allowed
    assert restored_rows(db)[0].scope == "policy"
    db.close()


def test_a_newer_bundle_or_a_pull_finding_nothing_newer_lets_it_decide(
    world: GatesWorld, tmp_path: Path
) -> None:
    db, _ = _restored_table(world, tmp_path)
    store = BundleStore(world.verifier, SqliteBundleTable(db, now=T + 6))
    store.reload(now=T + 6)
    assert store.held_back(world.authority.identifier)
    store.accept(world.bundle(revision=2, services=SERVICES), feeds=world.feeds(), now=T + 7)
    assert (_decides(world, store).allowed, _decides(world, store).revision) == (True, 2)
    assert not SqliteBundleTable(db).held_back()
    db.close()
    db, _ = _restored_table(world, tmp_path / "pulled")
    store = BundleStore(world.verifier, SqliteBundleTable(db, now=T + 6))
    store.reload(now=T + 6)
    assert store.confirm(world.authority.identifier)  # what a pull answered null does
    assert not store.confirm(world.authority.identifier)
    assert _decides(world, store).allowed
    db.close()


def test_a_store_from_before_the_policy_scope_is_not_read_as_restored(
    world: GatesWorld, tmp_path: Path
) -> None:
    """A node.db holding bundles an older troth stored (no `policy` entry, none in its guard)
    is current: nothing is held back; its next install counts."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    BundleStore(world.verifier, SqliteBundleTable(db)).accept(
        world.bundle(revision=1), feeds=world.feeds(), now=T + 5
    )
    db.execute("DELETE FROM rollback_counters")
    guard_path(path).unlink()
    table = SqliteBundleTable(db)
    assert table.restored is None
    store = BundleStore(world.verifier, table)
    store.reload(now=T + 6)
    assert _decides(world, store).allowed
    store.accept(world.bundle(revision=2), feeds=world.feeds(), now=T + 7)
    assert read_guard(guard_path(path)) == {"policy": 1}
    db.close()


@pytest.mark.parametrize(
    "crash", ["node.policy-bundle.before-commit", "node.policy-bundle.after-commit"]
)
def test_an_install_killed_around_its_commit_is_no_restore(
    troth_home: Path, tmp_path: Path, crash: str
) -> None:
    """Killed before the commit (the first install writes the guard's entry at the store's
    count first) or after it (the guard not yet raised: the store ahead of it), the next open
    finds no restore and the installed revision decides."""
    first, second = bundles(troth_home, tmp_path)
    assert push(troth_home, first) == {"revision": 1, "new": True}
    assert push(troth_home, second, crash) is None
    assert held(troth_home) == ([1] if "before" in crash else [2])  # in force, none held back
    with open_node("acme", home=troth_home) as node:
        assert restored_rows(node.db) == []
        counted = SqliteBundleTable(node.db)._guard.counter()
    assert read_guard(guard_path(node_db(troth_home, "acme"))) == {"policy": counted}


def test_the_first_install_killed_before_its_commit_is_no_restore(
    troth_home: Path, tmp_path: Path
) -> None:
    first, _ = bundles(troth_home, tmp_path)
    assert push(troth_home, first, "node.policy-bundle.before-commit") is None
    assert held(troth_home) == []
    assert push(troth_home, first) == {"revision": 1, "new": True}
    assert held(troth_home) == [1]
    with open_node("acme", home=troth_home) as node:
        assert restored_rows(node.db) == []


# -- the guard's versions -----------------------------------------------------------------------


def _version(slot: bytes) -> int:
    body = slot[2 : 2 + int.from_bytes(slot[:2], "big")]
    return int(cbor.decode(body)[1])


def test_a_guard_of_version_1_scopes_is_written_as_version_1() -> None:
    """An older troth (version 1, its scopes only) still reads a guard no bundle counted in;
    one holding `policy` is version 2, which it reads as no guard (docs/formats.md)."""
    assert _version(encode_slot(3, {"authority": 1, "broker": 2})) == 1
    assert _version(encode_slot(3, {"authority": 1, "policy": 2})) == GUARD_VERSION == 2
    assert decode_slot(encode_slot(3, {"authority": 1, "policy": 2})) == (
        3,
        {"authority": 1, "policy": 2},
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["troth.rollback-guard", 1, 1, {"policy": 1}], "unknown scope"),
        (["troth.rollback-guard", 2, 1, {"broker": 1}], "version 1's scopes only"),
        (["troth.rollback-guard", 3, 1, {"policy": 1}], "unknown version"),
        (["troth.rollback-guard", 2, 1, {"Policy": 1}], "unknown scope"),
        (["troth.rollback-guard", 2, 1, {"a" * 17: 1}], "unknown scope"),
        (["troth.rollback-guard", 2, 1, {f"s{i}": 1 for i in range(7)}], "more scopes"),
    ],
)
def test_a_slot_out_of_its_version_is_refused(value: list[Any], problem: str) -> None:
    body = cbor.encode(value)
    slot = (len(body).to_bytes(2, "big") + body + sha256(body)[:16]).ljust(GUARD_SLOT_BYTES, b"\0")
    with pytest.raises(DecodeError, match=problem):
        decode_slot(slot)


def test_a_scope_this_troth_does_not_know_is_kept(tmp_path: Path) -> None:
    """A newer troth's scope in a version 2 guard is read, kept and written back as it is,
    never lowered: the guard is not read as none (which would void an authority's tickets)."""
    path = tmp_path / "node.db"
    db = SqliteDatabase(path)
    guard = RollbackGuard(db, "policy")
    guard_path(path).write_bytes(encode_guard({"policy": 0, "vault": 9}))
    with db.transaction():
        guard.bump()
    assert read_guard(guard_path(path)) == {"policy": 1, "vault": 9}
    assert RollbackGuard(db, "authority").check(T, lambda: 0) is None
    db.close()


# -- the policy service: a held-back bundle is confirmed by its authority's node's answer -------


def _restart_held_back(net: MemNet, runtime: NodeRuntime, host: str) -> NodeRuntime:
    """`runtime`'s node, its bundle held back (as a restore found at open leaves it), in a
    new runtime on `host` (not started)."""
    runtime.node.db.execute(
        "INSERT INTO gates_policy_held_back VALUES (?)", (net.authority.identifier.digest,)
    )
    again = NodeRuntime(runtime.node, clock=net.clock, transport=net.transport(host))
    net.runtimes.append(again)
    return again


def test_a_members_held_back_bundle_decides_again_once_its_pull_is_answered_with_it(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        hub.policies.accept(bundle(net, 1), now=net.clock.now())
        b = await net.member("agent-b")
        await b.maintain()
        await b.stop()
        again = _restart_held_back(net, b, "host-agent-b")
        assert SqliteBundleTable(b.node.db).held_back() == {authority.digest}
        await again.start()
        await again.maintain()
        await until(lambda: not again.policies.held_back(authority), timeout=3)
        assert revision_of(again, authority) == 1
        assert not SqliteBundleTable(b.node.db).held_back()

    run_memnet(test, tmp_path)


def test_an_authority_node_hands_a_held_back_bundle_to_no_one_and_asks_a_member_back(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        hub.policies.accept(bundle(net, 1), now=net.clock.now())
        b = await net.member("agent-b")
        await b.maintain()
        await hub.stop()
        again = _restart_held_back(net, hub, "hub")
        await again.start(("hub", 4000))
        assert again.policies.held_back(authority)
        c = await net.member("agent-c")
        await c.maintain()
        assert revision_of(c, authority) == 0  # not handed out
        await b.maintain()  # names revision 1: asked back, its answer confirms the hub's
        await until(lambda: not again.policies.held_back(authority), timeout=3)
        await c.maintain()
        assert revision_of(c, authority) == 1

    run_memnet(test, tmp_path)
