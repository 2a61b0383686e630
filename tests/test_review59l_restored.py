"""Review 59l (adversarial review of review 59c's rotation shortcuts): the restore holds'
table remembered missing at a schema cookie.

1. `RestoredIdentities._holds_table` keeps "missing" at the schema cookie it read, and
   believes it while the cookie is that number. A cookie is a count of one file's schema
   changes, not a name of the schema: node.db's bytes put back in place under a running
   process (`cp` of a copy over it: the same file, which the running connection reads) take
   the copy's cookie, and the restore found then by another process (a CLI beside it) makes
   the holds' two tables, bringing the cookie back to the running process's number when the
   copy was two schema changes older. The running process then let a held identity sign
   (before review 59c: its look-up of `sqlite_master` found the table, and the query of it
   failed closed, StorageError).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.errors import IdentityError, StorageError
from troth.identity.restored import RestoredIdentities
from troth.node import init_node, open_node
from troth.storage.sqlite import SqliteDatabase

NOW = 1_790_000_000


def test_a_hold_made_at_the_cookie_of_a_remembered_miss_is_seen(tmp_path: Path) -> None:
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        node.identities.create(now=NOW, name="a")
        node.identities.rotate("a", now=NOW + 1)  # counted: a copy from here is behind later
        db = node.db
        assert db.truncate_wal()
        copy = db.path.read_bytes()
        node.identities.rotate("a", now=NOW + 2)
        db.execute("CREATE TABLE later_one (x)")  # two schema changes since the copy
        db.execute("CREATE TABLE later_two (x)")  # (as a table made on first use makes)
        node.identities.signer("a", now=NOW + 3)  # the holds' table missing: remembered
        assert db.truncate_wal()
        with db.path.open("r+b") as file:  # the copy put back in place (`cp copy node.db`)
            file.truncate(0)
            file.write(copy)
        other = SqliteDatabase(db.path)  # another process opens it: the restore is found
        try:
            assert RestoredIdentities(other).check(NOW + 4) is not None
            assert RestoredIdentities(other).held(node.identities.find("a").identifier)
        finally:
            other.close()
        with pytest.raises((IdentityError, StorageError)):
            node.identities.signer("a", now=NOW + 5)
