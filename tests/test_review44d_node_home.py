"""Review 44d, node home: what a node whose files were lost or damaged opens as.

Node home 1. The mirror of review 38c, vault 1 (tests/test_review38c_vault.py): a node whose
`node.db` is gone or empty (a restore killed after it copied `node.json` and `vault.key` but
before the database, a copy that created the file and wrote nothing, a file deleted by
mistake) while its `vault.key` is there. SQLite takes a missing or empty file for a new
database, so `open_node` made a fresh one: the node's identities, its authority and members,
its credentials and pending enrollments silently gone, and a started daemon created a new
identity under the node's name, published from then on in place of the old one; the restored
database, copied in later, then lost to whatever the fresh one had done meanwhile. A
`vault.key` is written only after the database was made (`open_node`: the database first, then
the key on first use), so a key file beside a missing or empty database is damage to report,
never a node to start afresh.

Was a strict xfail until `open_node` refused a missing or empty `node.db` beside a
`vault.key` (ConfigError naming the file: restore it, or remove `vault.key` too).

Node home 2: a damaged page's StorageError named no file (test below); was a strict xfail until
`SqliteDatabase` named its file in every statement's error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.errors import ConfigError, StorageError
from troth.node import init_node, open_node
from troth.node.node import node_dir

NOW = 1_800_000_000


def _node_with_an_identity(home: Path) -> Path:
    init_node("agent", home=home)
    with open_node("agent", home=home) as node:
        node.identities.create(now=NOW, name="agent")
    return node_dir(home, "agent") / "node.db"


@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_a_lost_database_beside_its_vault_key_is_reported_not_made_afresh(
    tmp_path: Path, damage: str
) -> None:
    """Review 44d, node home 1."""
    db = _node_with_an_identity(tmp_path)
    original = db.read_bytes()
    db.unlink()
    if damage == "empty":
        db.write_bytes(b"")
        db.chmod(0o600)
    with pytest.raises(ConfigError, match=r"node\.db.* (is missing|is empty)"):
        open_node("agent", home=tmp_path)
    assert not db.exists() or db.stat().st_size == 0  # nothing made in its place
    db.write_bytes(original)  # restored: the node opens with its identity
    db.chmod(0o600)
    with open_node("agent", home=tmp_path) as node:
        assert node.identities.find("agent").name == "agent"


def test_a_node_whose_creation_stopped_before_its_vault_key_opens(tmp_path: Path) -> None:
    """Review 44d, node home 1: `init_node` killed after it wrote `node.json` (no database,
    no `vault.key` yet) leaves a node that opens, its database made then."""
    init_node("agent", home=tmp_path)
    path = node_dir(tmp_path, "agent")
    (path / "node.db").unlink()
    (path / "vault.key").unlink()
    with open_node("agent", home=tmp_path) as node:
        node.identities.create(now=NOW, name="agent")


def test_a_damaged_database_page_is_a_storage_error_naming_the_file(tmp_path: Path) -> None:
    """Review 44d, node home 2. A page of `node.db` damaged (a bad sector, a copy taken while
    the node wrote, an edit with another tool) is found when a statement reads it: the
    StorageError said only SQLite's "database disk image is malformed", naming no file, where
    a node's home holds several databases (node.db, the trace log, the secrets' store) and an
    operator must know which one to restore."""
    init_node("agent", home=tmp_path)
    with open_node("agent", home=tmp_path) as node:
        for number in range(40):  # enough rows for the table to span several pages
            node.identities.create(now=NOW, name=f"agent-{number}")
    db = node_dir(tmp_path, "agent") / "node.db"
    data = bytearray(db.read_bytes())
    data[8192 : 8192 + 4096] = b"\x5a" * 4096  # one page of rows, overwritten
    db.write_bytes(bytes(data))
    with pytest.raises(StorageError) as raised, open_node("agent", home=tmp_path) as node:
        list(node.identities.list_local())
    assert str(db) in str(raised.value), raised.value


def test_a_full_disk_is_a_storage_error_saying_so(tmp_path: Path) -> None:
    """Review 44d, node home 3. A write that meets a full disk (SQLITE_FULL: a full file
    system, or here the database's page limit, which fails the same way) made SQLite roll the
    transaction back itself; `transaction()` then ran its own ROLLBACK, which raised the
    library's untyped `sqlite3.OperationalError: cannot rollback - no transaction is active`
    in place of the StorageError saying the disk is full (with a real full tmpfs too): the CLI
    reported an internal error, and a daemon's step failed with words naming neither cause nor
    file. Nothing was half-written (the transaction was rolled back). Was a strict xfail until
    `transaction()` rolled back only a transaction SQLite had not."""
    init_node("agent", home=tmp_path)
    with open_node("agent", home=tmp_path) as node:
        pages = node.db.fetch_one("PRAGMA page_count")[0]
        node.db.connection().execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageError, match=r"node\.db: database or disk is full"):
            for number in range(200):
                node.identities.create(now=NOW, name=f"agent-{number}")
        node.db.connection().execute(f"PRAGMA max_page_count = {100 * pages}")  # space again
        node.identities.create(now=NOW, name="agent")  # the database is usable
        assert node.identities.find("agent").name == "agent"
