"""Review 57i, restore 1 (review 57b's, left as a strict xfail in tests/test_review57b_restore.py):
a copy of node.db taken before an identity's rotation, put back, held the keys the rotation
deleted, and the node signed with them again, unseen. Each rotation is now counted in the
rollback guard's `identity` scope; a restored copy, once found, holds every local identity it
holds (no signer, no channel, no rotation: IdentityError ROLLBACK naming the restore), the
restore recorded for `troth node status`; `release_restored` lets one go
(troth.identity.restored; docs/storage.md, "Rollback guard"; docs/vault.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import (
    copy_db,
    forget_armed_scopes,
    node_db,
    restore_db,
    restores_found,
)
from troth.clock import FixedClock
from troth.errors import IdentityError, IdentityFailure
from troth.node import init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.storage.rollback import guard_path, read_guard
from troth.transport import MemoryNetwork, MemoryTransport
from troth.vault import KeyPurpose


def _restored_after_rotation(home: Path, *, compromised: bool = False, own: bool = False) -> Path:
    """Node `laptop` with identities `courier` and `clerk` (and its own, `laptop`, with `own`),
    put back to a copy taken before `courier` rotated; node.db's path."""
    init_node("laptop")
    path = node_db(home, "laptop")
    with open_node("laptop") as node:
        if own:
            node.identities.create(now=NOW, name="laptop")
        node.identities.create(now=NOW, name="courier")
        node.identities.create(now=NOW, name="clerk")
    copy_db(path, home / "copy.db")
    with open_node("laptop") as node:
        node.identities.rotate("courier", now=NOW + 10, compromised=compromised)
    restore_db(path, home / "copy.db")
    return path


def copied_after_a_rotation(home: Path) -> Path:
    """Node `laptop` with identity `courier` rotated once (counted), node.db copied to
    `home / "copy.db"` after it; node.db's path."""
    init_node("laptop")
    path = node_db(home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
        node.identities.rotate("courier", now=NOW + 1)
    copy_db(path, home / "copy.db")
    return path


def _refused(call: object) -> None:
    with pytest.raises(IdentityError) as refused:
        call()  # type: ignore[operator]
    assert refused.value.reason is IdentityFailure.ROLLBACK
    assert "restored from a copy" in str(refused.value)


def test_a_restored_copy_holds_every_identity_it_holds_once(troth_home: Path) -> None:
    """Neither the rotated identity nor the other (which rotated after the copy cannot be
    known) signs, attests a channel key or rotates; the restore is found once, recorded with
    the identities held."""
    path = _restored_after_rotation(troth_home, compromised=True)
    with open_node("laptop") as node:
        for name in ("courier", "clerk"):
            _refused(lambda name=name: node.identities.signer(name, now=NOW + 20))
            _refused(
                lambda name=name: node.identities.purpose_key(
                    name, KeyPurpose.SECURE_CHANNEL, now=NOW + 20
                )
            )
            _refused(lambda name=name: node.identities.rotate(name, now=NOW + 20))
        assert node.identities.get("courier", now=NOW + 20)  # still shown
    (found,) = restores_found(path)
    assert (found.scope, found.counter, found.guard, found.voided) == ("identity", 0, 1, 2)
    with open_node("laptop") as node:  # found once, held for good
        assert node.identities.check_restored(NOW + 30) is None
        _refused(lambda: node.identities.signer("courier", now=NOW + 30))
    assert [row.scope for row in restores_found(path)] == ["identity"]
    assert read_guard(guard_path(path)) == {"identity": 1}


def test_a_released_identity_signs_and_a_new_one_is_not_held(troth_home: Path) -> None:
    """The recovery: an identity made after the restore was found is not held; one the
    operator releases (not rotated since the copy) signs and rotates again, and its rotation
    is counted."""
    path = _restored_after_rotation(troth_home)
    with open_node("laptop") as node:
        assert node.identities.check_restored(NOW + 20) is not None
        node.identities.create(now=NOW + 20, name="courier-2")
        node.identities.signer("courier-2", now=NOW + 20).sign(b"m")
        assert node.identities.release_restored("clerk")
        assert not node.identities.release_restored("clerk")  # no longer held
        node.identities.signer("clerk", now=NOW + 20).sign(b"m")
        node.identities.rotate("clerk", now=NOW + 30)
        _refused(lambda: node.identities.signer("courier", now=NOW + 30))
    assert read_guard(guard_path(path)) == {"identity": 2}


def test_a_copy_put_back_without_its_guard_is_held(troth_home: Path) -> None:
    """A copy taken after the first rotation counted, put back on a disk without its guard
    (the disk failed; a thief's copy run elsewhere): found, as an armed scope is."""
    path = copied_after_a_rotation(troth_home)
    with open_node("laptop") as node:
        node.identities.rotate("courier", now=NOW + 10, compromised=True)
    restore_db(path, troth_home / "copy.db")
    guard_path(path).unlink()
    with open_node("laptop") as node:
        _refused(lambda: node.identities.signer("courier", now=NOW + 20))
    (found,) = restores_found(path)
    assert (found.scope, found.counter, found.guard) == ("identity", 1, None)


def test_a_node_db_from_before_the_identity_scope_opens_and_signs(troth_home: Path) -> None:
    """A node.db an older troth wrote (no scope armed, no `identity` entry in its guard) is
    current: its identities sign and rotate, the rotation counted from then on."""
    init_node("laptop")
    path = node_db(troth_home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
        node.identities.rotate("courier", now=NOW + 1)
    forget_armed_scopes(path)
    guard_path(path).unlink()
    with open_node("laptop") as node:
        node.identities.signer("courier", now=NOW + 2).sign(b"m")
        node.identities.rotate("courier", now=NOW + 3)
    assert restores_found(path) == []
    assert read_guard(guard_path(path)) == {"identity": 1}


def test_a_starting_node_finds_the_restore_for_its_status(troth_home: Path) -> None:
    """A node whose own identity the copy holds does not start (IdentityError naming the
    restore); released (not rotated since the copy), it starts, and `troth node status` (the
    runtime's `restored`) shows the restore."""
    _restored_after_rotation(troth_home, own=True)
    network = MemoryNetwork()

    async def started() -> list[str]:
        node = open_node("laptop")
        runtime = NodeRuntime(
            node,
            clock=FixedClock(NOW + 20),
            transport=lambda router: MemoryTransport(router, network, host="host-laptop"),
        )
        try:
            await runtime.start()
            return [row["scope"] for row in runtime.status()["restored"]]
        finally:
            await runtime.stop()
            node.close()

    _refused(lambda: asyncio.run(started()))
    with open_node("laptop") as node:
        assert node.identities.release_restored("laptop")
    assert asyncio.run(started()) == ["identity"]
