"""Review 65o: attacks on the hold a restore of an authority's node.db puts on it (feed 2) that
did not work, each pinned: it would fail if the defence it names broke."""

from __future__ import annotations

from pathlib import Path

import troth
from tests.support.backups import copy_db, node_db, release_authority, restore_db
from tests.test_review65o_feed import _restored


def test_a_copy_of_a_held_node_db_put_back_is_still_held(troth_home: Path, tmp_path: Path) -> None:
    """The hold lives in node.db, with the restore: a copy taken while held, put back after
    the release (no irreversible write since: not found as a restore again), holds it still."""
    authority, _ = _restored(troth_home, tmp_path)
    path = node_db(troth_home, "acme")
    with troth.Node.open("acme") as acme:
        assert acme.feed(authority) is None  # found: held
    copy_db(path, tmp_path / "held.db")
    assert release_authority(troth_home, "acme") is not None
    with troth.Node.open("acme") as acme:
        assert acme.feed(authority) is not None
    restore_db(path, tmp_path / "held.db")
    with troth.Node.open("acme") as acme:
        assert acme.feed(authority) is None


def test_a_copy_taken_after_the_release_put_back_is_held_again(
    troth_home: Path, tmp_path: Path
) -> None:
    """A release lifts the hold of the restore it was for, not of later ones: a copy taken
    after it, put back once the authority revoked more, is found and held."""
    authority, _ = _restored(troth_home, tmp_path)
    assert release_authority(troth_home, "acme") is not None
    path = node_db(troth_home, "acme")
    copy_db(path, tmp_path / "later.db")
    with troth.Node.open("acme") as acme:
        acme.authority().revoke_identity(acme.identities.create("y").identifier)
    restore_db(path, tmp_path / "later.db")
    with troth.Node.open("acme") as acme:
        assert acme.feed(authority) is None
    assert release_authority(troth_home, "acme") is not None
    assert release_authority(troth_home, "acme") is None  # once: nothing more to release
