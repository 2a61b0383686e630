"""Review 72v, planted: what else a copy of node.db put back may carry, beyond a trigger and the
restore's own tables made otherwise (72k holds2 4, 5), that changes what the restore reads or
writes (docs/storage.md, "Rollback guard")."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, release_authority, restore_db, restores_found
from tests.test_review57i_restore import _refused, _restored_after_rotation
from tests.test_review72b_release import edit
from troth.errors import AuthorityError, StorageError
from troth.gates import SqliteBundleTable
from troth.node import open_node
from troth.storage import SqliteDatabase

_COLUMNS = (
    "identifier, history, changes, updated_at, name, created_at, next_key, change_rows, linked"
)


def refused_until_fixed(path: Path, match: str, *fixes: tuple[str, tuple[object, ...]]) -> None:
    """node `laptop`'s restore of `path` refused (StorageError matching `match`, nothing
    recorded) until `fixes` are run on it: then found, and `courier` and `clerk` held."""
    with open_node("laptop") as node, pytest.raises(StorageError, match=match):
        node.identities.signer("courier", now=NOW + 30)
    assert restores_found(path) == []
    edit(path, *fixes)
    with open_node("laptop") as node:
        for name in ("courier", "clerk"):
            _refused(lambda name=name: node.identities.signer(name, now=NOW + 30))


def test_a_view_in_the_copy_does_not_hide_identities_from_the_hold(troth_home: Path) -> None:
    """72v planted 1: a copy put back with `identities` renamed and a VIEW of that name in its
    place, showing each identity's `primary_key` only once the identity scope's restore is
    recorded (`rollback_counters.restored_at`, written after the holds): the restore held no
    identity (its hold reads `identities ... WHERE primary_key IS NOT NULL`), and `courier`,
    rotated after the copy was taken, signed with the keys its rotation retired. troth makes
    no view: now a restore found on a copy holding one is refused (StorageError naming it,
    nothing recorded) until it is dropped."""
    path = _restored_after_rotation(troth_home)
    edit(
        path,
        ("ALTER TABLE identities RENAME TO kept", ()),
        (
            f"CREATE VIEW identities AS SELECT {_COLUMNS}, CASE WHEN (SELECT restored_at FROM "  # noqa: S608
            "rollback_counters WHERE scope = 'identity') IS NULL THEN NULL ELSE primary_key "
            "END AS primary_key FROM kept",
            (),
        ),
    )
    refused_until_fixed(
        path,
        "view 'identities'",
        ("DROP VIEW identities", ()),
        ("ALTER TABLE kept RENAME TO identities", ()),
    )


_TICKETS: Final = (
    "CREATE TABLE t2 (code_hash BLOB PRIMARY KEY, attributes BLOB NOT NULL, uses_left INTEGER "
    "NOT NULL, expires_at INTEGER NOT NULL, created_by BLOB NOT NULL, created_at INTEGER NOT "
    "NULL, uses INTEGER{})"
)


def tickets_made(path: Path, clause: str) -> None:
    """The tickets of node.db at `path` in a table made again with `clause` after its columns."""
    edit(
        path,
        *(
            (sql, ())
            for sql in (
                _TICKETS.format(clause),
                "INSERT INTO t2 SELECT * FROM tickets",
                "DROP TABLE tickets",
                "ALTER TABLE t2 RENAME TO tickets",
            )
        ),
    )


def ticket_kept(troth_home: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """Node `acme`'s node.db, a copy of it taken after one ticket was used and before another,
    of two uses, was used twice, its tickets made again with `UNIQUE (uses_left) ON CONFLICT
    IGNORE`; and that other ticket."""
    with troth.Node.open("acme") as acme:
        authority = acme.create_authority()
        used = authority.ticket({"team.name": "x"})
        later = authority.ticket({"team.name": "y"}, uses=2)
    with troth.Node.open("a") as a:
        a.enroll(used)
    path = node_db(troth_home, "acme")
    copy = tmp_path / "acme.db"
    copy_db(path, copy)
    for name in ("b", "c"):
        with troth.Node.open(name) as node:
            node.enroll(later)
    tickets_made(copy, ", UNIQUE (uses_left) ON CONFLICT IGNORE")
    return path, copy, later


def test_a_conflict_clause_in_the_copy_does_not_keep_a_ticket(
    troth_home: Path, tmp_path: Path
) -> None:
    """72v planted 2: a copy put back holding `tickets` made with `UNIQUE (uses_left) ON
    CONFLICT IGNORE`, a used ticket in it: the restore's `UPDATE tickets SET uses_left = 0`
    was ignored for a ticket of two uses (its 0 conflicted with the used one's), `voided` 0,
    and once the operator released the authority's hold that ticket, redeemed twice after
    the copy was taken, was redeemed a third time. troth's tables carry no conflict clause:
    now a restore found on a copy whose tables do is refused (StorageError naming the table,
    nothing recorded) until the table is made again without it."""
    path, copy, later = ticket_kept(troth_home, tmp_path)
    restore_db(path, copy)
    with pytest.raises(StorageError, match="table 'tickets'"):
        release_authority(troth_home, "acme")
    assert restores_found(path) == []
    tickets_made(path, "")
    assert release_authority(troth_home, "acme") is not None  # the restore found, held
    with troth.Node.open("d") as d, pytest.raises(AuthorityError):
        d.enroll(later)


def test_a_restore_table_named_in_another_case_is_checked(troth_home: Path) -> None:
    """72v planted 3: `check_made` looked its table up by its name as troth spells it
    (`name = ?`, case-sensitive) where SQLite takes names in any case: a copy holding
    `IDENTITY_RESTORE_HOLDS` made otherwise passed it, and the restore wrote that table.
    (A definition that drops holds, a conflict clause, is refused by planted 2 now; this one,
    `held_at` without NOT NULL, drops none: `held_at` with a default, as it was, is refused by
    `planted` first since review 74c, planted6 4.) Now looked up in any case, refused as made
    otherwise (StorageError naming it, nothing recorded) until dropped."""
    path = _restored_after_rotation(troth_home)
    edit(
        path,
        (
            "CREATE TABLE IDENTITY_RESTORE_HOLDS (identifier BLOB PRIMARY KEY, held_at INTEGER)",
            (),
        ),
    )
    refused_until_fixed(
        path,
        "'identity_restore_holds' made as troth never",
        ("DROP TABLE identity_restore_holds", ()),
    )


_A, _B = b"\x01" * 32, b"\x02" * 32
_CASCADING: Final[tuple[tuple[str, tuple[object, ...]], ...]] = (
    (
        "CREATE TABLE held (authority BLOB PRIMARY KEY, link BLOB DEFAULT x'"
        + _A.hex()
        + "' REFERENCES held (authority) ON DELETE CASCADE) WITHOUT ROWID",
        (),
    ),
    ("INSERT INTO held (authority, link) VALUES (?, NULL)", (_A,)),
    ("DROP TABLE gates_policy_held_back", ()),
    ("ALTER TABLE held RENAME TO gates_policy_held_back", ()),
)


def policy_copy_restored(tmp_path: Path, *edits: tuple[str, tuple[object, ...]]) -> Path:
    """node.db in `tmp_path` holding bundles of `_A` and `_B`, put back to a copy taken before
    `_B`'s second, edited with `edits` first: its policy restore is found when it opens."""
    path, copy = tmp_path / "node.db", tmp_path / "copy.db"
    db = SqliteDatabase(path)
    table = SqliteBundleTable(db, now=1)
    for authority in (_A, _B):
        table.save_if_newer(authority, 1, authority, 1)
    copy_db(path, copy)
    table.save_if_newer(_B, 2, _B, 2)
    db.close()
    edit(copy, *edits)
    restore_db(path, copy)
    return path


def test_a_foreign_key_action_in_the_copy_does_not_release_held_bundles(tmp_path: Path) -> None:
    """72v planted 4: a copy put back holding `gates_policy_held_back` made with a column
    defaulting to authority A's key, `REFERENCES gates_policy_held_back ON DELETE CASCADE`
    (A held back in it already): the policy restore held back A and B, each row it wrote
    linked to A's, and the operator's push of A's newest (`confirm`) deleted A's row and with
    it B's: B's bundle, the copy's, signed up from without the operator's word. troth's
    tables carry no foreign-key action: now a restore found on a copy whose tables do is
    refused (StorageError naming the table, nothing recorded)."""
    path = policy_copy_restored(tmp_path, *_CASCADING)
    db = SqliteDatabase(path)
    try:
        with pytest.raises(StorageError, match="table 'gates_policy_held_back'"):
            SqliteBundleTable(db, now=3)
        assert restores_found(path) == []
    finally:
        db.close()
