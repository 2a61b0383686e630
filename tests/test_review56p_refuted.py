"""Review 56p: attacks on this session's storage, credentials and identity changes (reviews
56a, 56d, 56i) that did not work. Each would fail if its defence broke."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import forget_armed_scopes, node_db, restores_found
from tests.support.fixed_vault import FixedKeyVault
from tests.support.parties import Party, make_party, verified_feed
from tests.vectors.vc.generate import KEYS
from tests.vectors.vc.generate import T as VC_T
from tests.vectors.vc.generate import build as build_troth_vc
from troth.credentials import Attributes, TrustPolicy
from troth.credentials.vc import export_credential_vc, verify_troth_vc
from troth.crypto import KeyType
from troth.errors import ConflictError, StorageError
from troth.identity import verify_history
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.storage.rollback import guard_path, read_guard
from troth.vault import KeyHandle

# -- storage 1 (review 56d): what is and is not a transaction SQLite abandoned ---------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "node.db")
    database.execute("CREATE TABLE t (x BLOB PRIMARY KEY)")
    yield database
    database.close()


def _rows(db: SqliteDatabase) -> list[bytes]:
    return [bytes(r[0]) for r in db.fetch_all("SELECT x FROM t ORDER BY x")]


def test_a_constraint_violation_caught_is_not_reported_as_a_rolled_back_transaction(
    db: SqliteDatabase,
) -> None:
    """A statement refused by a constraint undoes itself only (SQLite keeps the transaction):
    a caller that catches the ConflictError and goes on (the software vault taking another key
    number) writes and commits the rest, no statement refused as after SQLite's rollback."""
    with db.transaction():
        db.execute("INSERT INTO t VALUES (?)", (b"a",))
        for write in (db.execute, db.run):
            with pytest.raises(ConflictError):
                write("INSERT INTO t VALUES (?)", (b"a",))
        with pytest.raises(ConflictError):
            db.execute_many("INSERT INTO t VALUES (?)", [(b"m",), (b"a",)])
        db.run("INSERT INTO t VALUES (?)", (b"b",))
        db.execute_many("INSERT INTO t VALUES (?)", [(b"c",)])
    assert _rows(db) == [b"a", b"b", b"c", b"m"]  # a batch's rows before its conflict stand


def test_an_interrupted_write_that_sqlite_rolled_back_commits_nothing(db: SqliteDatabase) -> None:
    """Another way SQLite abandons a transaction (an interrupted INSERT, UPDATE or DELETE in
    one rolls all of it back: sqlite3_interrupt): found as a full disk's is, whatever the
    caller catches, and nothing of the unit of work is written."""
    conn = db.connection()
    with pytest.raises(StorageError, match="rolled back"), db.transaction():
        db.execute("INSERT INTO t VALUES (?)", (b"before",))
        conn.set_progress_handler(lambda: 1, 1)  # the next statement is interrupted
        with pytest.raises(StorageError, match="interrupted"):
            db.execute("INSERT INTO t VALUES (?)", (b"x",))
        conn.set_progress_handler(None, 1)
        assert not conn.in_transaction
        with contextlib.suppress(StorageError):
            db.run("INSERT INTO t VALUES (?)", (b"after",))  # a caller going on
    assert _rows(db) == []


def test_a_rotation_whose_key_deletion_abandoned_the_transaction_loses_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_retire_keys` deletes the retired keys best effort (a failure suppressed). A deletion
    that fails with SQLite rolling the rotation back: the rotation fails as a whole,
    the old key's row (in node.db, the software vault's) comes back with the history, and the
    identity signs as before; no half (the history rotated, or its key gone) stands."""
    init_node("agent", home=tmp_path)
    with open_node("agent", home=tmp_path) as node:
        before = node.identities.create(now=NOW, name="agent")
        vault = node.identities.vault
        delete = vault.delete

        def failing_delete(handle: KeyHandle) -> None:
            """The deletion meets a failure SQLite rolls the whole transaction back for (an
            interrupted DELETE does, always; a full disk or an I/O error may)."""
            conn = node.db.connection()
            conn.set_progress_handler(lambda: 1, 1)
            try:
                delete(handle)
            finally:
                conn.set_progress_handler(None, 1)

        monkeypatch.setattr(vault, "delete", failing_delete)
        with pytest.raises(StorageError, match="rolled back"):
            node.identities.rotate("agent", now=NOW + 10)
        monkeypatch.undo()
        assert not node.db.connection().in_transaction
        record = node.identities.find("agent")
        assert record.changes == before.identity.change_count
        assert vault.public_key(before.primary_key) is not None  # the key came back
        node.identities.signer("agent", now=NOW + 20)  # signs as before
        node.identities.rotate("agent", now=NOW + 30)  # and rotates once there is room
        assert node.identities.find("agent").changes == before.identity.change_count + 1


# -- rollback 1 (review 56d): an upgraded authority armed, a fresh one never refused ---------


def test_an_arming_killed_before_its_commit_reads_as_current_not_restored(
    troth_home: Path,
) -> None:
    """`check_restored` arms an upgraded authority holding tickets: the guard's entry (0) is
    written before the commit of node.db's. A process killed in between leaves the guard
    armed and node.db not: the next open finds a current store (its ticket still redeems),
    not a restored copy whose tickets it would use up."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    path = node_db(troth_home, "acme")
    forget_armed_scopes(path)  # node.db not armed ...
    assert read_guard(guard_path(path)) == {"authority": 0}  # ... its guard armed
    with troth.Node.open("acme") as acme:
        acme.authority()
    with troth.Node.open("a") as a:
        a.enroll(ticket)  # not voided as a restored copy's
    assert restores_found(path) == []


# -- credentials 2-3 (review 56a): legitimate VCs still verify --------------------------------


def _vc_authority() -> tuple[Party, Party]:
    """The golden VC's authority and member (tests/vectors/vc/generate.py's fixed keys)."""
    vault = FixedKeyVault([(KeyType.ED25519, k) for k in KEYS])
    return make_party(vault, now=VC_T), make_party(vault, now=VC_T)


def test_the_golden_troth_vc_verifies_with_its_authoritys_own_feed() -> None:
    """`verify_troth_vc` now requires the issuer's feed to bind its history: the golden VC
    (tests/vectors/vc), its authority's whole history and its own (empty) feed, verifies."""
    vector = build_troth_vc()
    authority, _ = _vc_authority()
    issuer = verify_history(bytes.fromhex(vector["authority_history"]), now=VC_T)
    feed = verified_feed(authority, now=VC_T + 10)
    verified = verify_troth_vc(
        vector["document"],
        policy=TrustPolicy(frozenset({issuer.identifier})),
        issuer=issuer,
        feeds={issuer.identifier: feed},
        now=VC_T + 10,
    )
    assert verified.credential_hash.hex() == vector["credential_hash"]


def test_a_vc_whose_window_is_one_instant_is_not_refused_as_malformed() -> None:
    """validFrom > validUntil is refused (review 56a, credentials 3); equal ones are not (VC
    2.0 §4.9 forbids only a later validFrom): made, and verified within the clock skew."""
    authority, member = _vc_authority()
    document = export_credential_vc(
        authority.signer,
        credential_id=bytes([9]) * 16,
        subject=member.identifier,
        attributes=Attributes({"orders.access": "read"}),
        valid_from=VC_T + 5,
        valid_until=VC_T + 5,
        now=VC_T,
    )
    verified = verify_troth_vc(
        document,
        policy=TrustPolicy(frozenset({authority.identifier})),
        issuer=authority.identity,
        feeds={authority.identifier: verified_feed(authority, now=VC_T + 5)},
        now=VC_T + 5,
    )
    assert verified.within_skew


def test_sqlite3_reports_a_transaction_it_rolled_back() -> None:
    """What the detection relies on: `in_transaction` is SQLite's autocommit flag, false once
    SQLite rolled the transaction back itself, true after a statement-only failure."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (x PRIMARY KEY)")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO t VALUES (1)")
    assert conn.in_transaction
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT OR ROLLBACK INTO t VALUES (1)")
    assert not conn.in_transaction
    conn.close()
