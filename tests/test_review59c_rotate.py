"""Review 59c (performance of identity.rotate, benchmarks/README.md "Pass 59c"): statements a
rotation ran that cost more than what they found.

1. Before each rotation (and signer, channel) the restore's hold was looked up by scanning
   `sqlite_master` for the holds' table (~10 us), which exists only once a restore was found:
   now once per schema cookie (`PRAGMA schema_version`, ~0.8 us) while it is missing, never
   once it was seen.
2. The purpose keys a rotation retires were taken by `DELETE ... RETURNING` (~3.6 us even
   for no row: RETURNING fills a table of its own); a look-up first (~1 us) finds most
   identities have none.
3. The rollback guard's count was an UPSERT ... RETURNING (~7.5 us); an UPDATE and a read
   of the count (~2 us), the scope's first count an INSERT.
6. The keys of a batch (`create_many`) were not marked seen stored, as a key `generate` makes
   is: the first use of each looked its row up, two per rotation of a batch's identity.
4./5. The guard's raise (paths looked up as text, the guard it wrote last compared before
   any hashing) and a local identity's record (its fields set through their slots): checked
   by the tests of the guard and the identity service, unchanged.
"""

from __future__ import annotations

from pathlib import Path

from troth.node import init_node, open_node
from troth.storage.rollback import RollbackGuard, read_guard
from troth.storage.sqlite import SqliteDatabase
from troth.vault import KeyPurpose

NOW = 1_790_000_000


def _statements(db: SqliteDatabase) -> list[str]:
    """Every statement this thread's connection of `db` runs from now on."""
    seen: list[str] = []
    db.connection().set_trace_callback(seen.append)
    return seen


def _rotation_statements(tmp_path: Path) -> list[str]:
    """The statements of a node's second rotation of one identity (no purpose key)."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        node.identities.create(now=NOW, name="a")
        node.identities.rotate("a", now=NOW + 1)
        seen = _statements(node.db)
        node.identities.rotate("a", now=NOW + 2)
        node.db.connection().set_trace_callback(None)
    return seen


def test_a_rotation_scans_no_schema(tmp_path: Path) -> None:
    """1: no `sqlite_master` scan for the restore holds' table in a rotation with no restore
    recorded (the scan was each rotation's): the identity scope's `restored_at` read instead
    (review 59l, restored 1: not a schema cookie remembered). The one schema read left is the
    trace outbox's table, looked up by name on a node.db that has none (review 70g, perf 1:
    the statement on its rows that replaced it failed its prepare, ~17 us, where the read is
    ~5 us)."""
    seen = _rotation_statements(tmp_path)
    assert [s for s in seen if "sqlite_master" in s] == [
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trace_outbox'"
    ]
    assert not [s for s in seen if "schema_version" in s]


def test_a_rotation_without_purpose_keys_deletes_none(tmp_path: Path) -> None:
    """2: an identity with no purpose key: a look-up, no DELETE ... RETURNING."""
    seen = _rotation_statements(tmp_path)
    assert not [s for s in seen if s.startswith("DELETE FROM purpose_keys")]


def test_a_rotation_counts_without_returning(tmp_path: Path) -> None:
    """3: the count is an UPDATE and a read, no statement with RETURNING (its table)."""
    seen = _rotation_statements(tmp_path)
    assert not [s for s in seen if "RETURNING" in s]
    assert [s for s in seen if s.startswith("UPDATE rollback_counters")]


def test_a_rotation_still_retires_its_purpose_keys(tmp_path: Path) -> None:
    """2: an identity with a purpose key: the key is taken and deleted with the rotation."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        node.identities.create(now=NOW, name="a")
        signer = node.identities.signer("a", now=NOW)
        handle = signer.handle
        digest = signer.identity.identifier.digest
        assert node.identities.store.get_purpose_key(digest, int(KeyPurpose.SIGNING))
        node.identities.rotate("a", now=NOW + 1)
        assert node.identities.store.get_purpose_key(digest, int(KeyPurpose.SIGNING)) is None
        assert (
            node.db.fetch_one(
                "SELECT 1 FROM vault_keys WHERE key_id = ?", (int(handle.key_id, 16),)
            )
            is None
        )


def test_the_count_and_the_guard_agree(tmp_path: Path) -> None:
    """3: the first count inserts 1 (no entry), an armed entry (0) counts from it, and each
    commit raises the guard to the count the transaction wrote."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        guard = RollbackGuard(db, "identity")
        for expected in (1, 2, 3):
            with db.transaction():
                guard.bump()
            assert guard.counter() == expected
            assert (read_guard(guard.path) or {}).get("identity") == expected
        broker = RollbackGuard(db, "broker")
        with db.transaction():
            broker.arm()
        with db.transaction():
            broker.bump()
            broker.bump()  # two counts in one transaction: one raise, to the second
        assert broker.counter() == 2
        assert read_guard(broker.path) == {"identity": 3, "broker": 2}
    finally:
        db.close()


def test_a_rotation_of_a_batchs_identity_looks_up_no_key_row(tmp_path: Path) -> None:
    """6: identities made in a batch by this process, rotated: no key row looked up (two a
    rotation before: the revealed key's and the current one's)."""
    init_node("n", home=tmp_path)
    with open_node("n", home=tmp_path) as node:
        made = node.identities.create_many(3, now=NOW, name_prefix="b")
        node.identities.rotate(made[0].name or "", now=NOW + 1)
        seen = _statements(node.db)
        node.identities.rotate(made[1].name or "", now=NOW + 1)
        node.db.connection().set_trace_callback(None)
    assert not [s for s in seen if s.startswith("SELECT key_type, purpose, sealed FROM vault_keys")]
