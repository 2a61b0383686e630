"""Review 57r: attacks on (and false alarms of) review 57i's "a restored node.db holds its
identities" (troth.identity.restored) that did not work."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db, restores_found
from tests.support.cli import run, troth_process
from tests.test_review57i_restore import _refused, _restored_after_rotation
from troth.node import init_node, open_node
from troth.storage.rollback import guard_path, read_guard


def test_a_node_moved_with_its_guard_to_a_new_machine_signs(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An honest move: the node's directory (node.db and node.db.guard) copied to a new home
    after a rotation is current there."""
    init_node("laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
        node.identities.rotate("courier", now=NOW + 1)
    moved = tmp_path / "new-machine"
    shutil.copytree(troth_home, moved)
    monkeypatch.setenv("TROTH_HOME", str(moved))
    with open_node("laptop") as node:
        node.identities.signer("courier", now=NOW + 2).sign(b"m")
        node.identities.rotate("courier", now=NOW + 3)
    assert restores_found(node_db(moved, "laptop")) == []


def test_two_nodes_in_one_home_count_their_own_rotations(troth_home: Path) -> None:
    """Node desk's rotations are not laptop's: laptop put back to a copy from before desk
    rotated is current (each node.db has its own guard)."""
    init_node("laptop")
    init_node("desk")
    laptop = node_db(troth_home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
    with open_node("desk") as node:
        node.identities.create(now=NOW, name="clerk")
    copy_db(laptop, troth_home / "copy.db")
    with open_node("desk") as node:
        node.identities.rotate("clerk", now=NOW + 1, compromised=True)
    restore_db(laptop, troth_home / "copy.db")
    with open_node("laptop") as node:
        node.identities.signer("courier", now=NOW + 2).sign(b"m")
    with open_node("desk") as node:
        node.identities.signer("clerk", now=NOW + 2).sign(b"m")
    assert restores_found(laptop) == []
    assert restores_found(node_db(troth_home, "desk")) == []


@pytest.mark.parametrize("crash", ["before-commit", "after-commit"])
def test_a_rotation_killed_after_its_count_is_no_restore(troth_home: Path, crash: str) -> None:
    """A rotation killed before its commit (its bump rolled back with it, the guard's entry
    written at the old count) or after it, before the guard was raised (crash window 2): the
    node.db left is current, its identity signs."""
    now = int(time.time()) - 10  # before the process's own clock
    init_node("laptop")
    path = node_db(troth_home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=now, name="courier")
        node.identities.rotate("courier", now=now + 1)
    troth_process(
        "identity", "rotate", "courier", "--node", "laptop", crash=f"identity.rotate.{crash}"
    )
    with open_node("laptop") as node:
        node.identities.signer("courier", now=now + 20).sign(b"m")
        changes = node.identities.get("courier", now=now + 20).identity.change_count
    assert changes == (2 if crash == "before-commit" else 3)
    assert restores_found(path) == []
    assert read_guard(guard_path(path)) == {"identity": changes - 1}


def test_an_authority_whose_own_identity_is_held_signs_nothing(troth_home: Path) -> None:
    """The authority node's own identity is a local identity like any: held by the restore,
    the authority issues nothing with it (its signer refused)."""
    now = int(time.time())
    run("authority", "create", "acme")
    path = node_db(troth_home, "acme")
    copy_db(path, troth_home / "copy.db")
    with open_node("acme") as node:
        node.identities.create(now=now, name="courier")
        node.identities.rotate("courier", now=now + 1)
    restore_db(path, troth_home / "copy.db")
    with open_node("acme") as node:
        _refused(lambda: node.authority().signer(now + 2))
    assert [row.scope for row in restores_found(path)] == ["identity"]


def test_releasing_on_a_current_node_writes_nothing(troth_home: Path) -> None:
    """`release-restored` of an identity no restore holds: not held, no restore recorded."""
    init_node("laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
        node.identities.rotate("courier", now=NOW + 1)
    out = run("identity", "release-restored", "courier", "--node", "laptop").stdout
    assert "is not held" in out
    assert restores_found(node_db(troth_home, "laptop")) == []


def test_a_released_identity_stays_released_in_another_process(troth_home: Path) -> None:
    """A release is stored (the hold's row deleted): a second open of the node does not hold
    the identity again, and the one not released stays held."""
    _restored_after_rotation(troth_home)
    run("identity", "release-restored", "clerk", "--node", "laptop", "--vouch-not-rotated")
    with open_node("laptop") as node:
        node.identities.signer("clerk", now=NOW + 30).sign(b"m")
        _refused(lambda: node.identities.signer("courier", now=NOW + 30))
