"""Review 71k (wave2d): attacks that worked on main before their fix.

wave2d 1 (medium): review 71c rows 11 made a rotation read a damaged `purpose_keys` row as no
   record, so that a node.db writer who stole a purpose key cannot keep it current by failing
   every rotation of its identity. The handle was still handed to Python as TEXT: one that is
   not UTF-8 (`CAST(x'ff' AS TEXT)`) failed the rotation's DELETE ... RETURNING ("Could not
   decode to UTF-8 column"), a compromised one too, for as long as the row stayed. And its
   bound (`length()`, characters) counted a lead byte followed by a MiB of continuation bytes
   as one character: such a handle was fetched whole. The handle is now read as the bytes of
   its text, bounded in bytes, and decoded in Python: one that is not UTF-8 is damaged (no
   record for the rotation, StorageError for a channel), like one of another type.

wave2d 2 (low): a local identity's TEXT columns (`identities`: name, primary and next key
   handles) were read as SQLite returned them, each time the node listed or found its
   identities (a signer, a rotation): a name of 2 MiB was fetched whole, a BLOB handle handed
   on as the handle (failing bare later: `KeyHandle.parse` of bytes), TEXT that is not UTF-8
   failed as a statement ("Could not decode"). They are read as `text_sql` reads, a name at
   most MAX_NAME_LENGTH characters (4 bytes each), a handle 4,096 bytes, and refused with
   StorageError saying node.db is damaged.

rows 10 (review 71c, closed here): the authority's enrollment rows (`members`, the `tickets`
   row a redemption RETURNs, `issued_credentials`, `redemptions`' chain, `pending_enrollments`,
   `announcements`, `authority_revoke_again`) were taken as `bytes()` / `int()` of what SQLite
   returned: TEXT failed bare (TypeError), an INTEGER n made n zero bytes (MemoryError for a
   large n), a REAL was truncated. They are read typed and bounded in SQL
   (`troth.storage.row_types`) and refused with StorageError saying node.db is damaged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.errors import StorageError
from troth.node import init_node, open_node
from troth.storage import SqliteAuthorityStore, SqliteCredentialStore, SqliteDatabase
from troth.vault import KeyPurpose


@pytest.fixture
def node_db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    """A fresh node.db (closed after the test)."""
    db = SqliteDatabase(tmp_path / "node.db")
    yield db
    db.close()


_HANDLES = {  # the bytes of a TEXT handle
    "not utf-8": b"\xff",
    "one character of a MiB": b"\xc0" + b"\x80" * (1 << 20),  # length() counts lead bytes
}


@pytest.mark.parametrize("what", sorted(_HANDLES))
def test_a_purpose_key_handle_not_utf8_blocks_no_compromised_rotation(what: str) -> None:
    """71k wave2d 1: a purpose key row whose handle is TEXT that is not UTF-8 failed the
    compromised rotation of its identity (StorageError "Could not decode", for good); now the
    rotation commits, the row gone, and a channel's read of it says node.db is damaged."""
    init_node("n")
    with open_node("n") as node:
        service = node.identities
        local = service.create(now=NOW, name="a")
        service.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW)
        node.db.execute("UPDATE purpose_keys SET key_handle = CAST(? AS TEXT)", (_HANDLES[what],))
        with pytest.raises(StorageError, match="is damaged: its"):
            service.store.get_purpose_key(local.identifier.digest, int(KeyPurpose.SECURE_CHANNEL))
        rotated = service.rotate("a", now=NOW + 10, compromised=True)
        assert rotated.identity.changes != local.identity.changes
        assert node.db.fetch_all("SELECT * FROM purpose_keys") == []


_LOCAL = {
    "name huge": "UPDATE identities SET name = replace(hex(zeroblob(1 << 20)), '0', 'a')",
    "name not utf-8": "UPDATE identities SET name = CAST(x'ff' AS TEXT)",
    "primary key blob": "UPDATE identities SET primary_key = x'00'",
    "next key blob": "UPDATE identities SET next_key = x'00'",
}


@pytest.mark.parametrize("what", sorted(_LOCAL))
def test_a_damaged_local_identity_text_is_refused(what: str) -> None:
    """71k wave2d 2: a local identity's name or key handle of another type, past its bound or
    not UTF-8 was handed on (a BLOB as a handle, a 2 MiB name) or failed as a statement; now
    StorageError saying node.db is damaged."""
    init_node("n")
    with open_node("n") as node:
        digest = node.identities.create(now=NOW, name="a").identifier.digest
        node.db.execute(_LOCAL[what])
        with pytest.raises(StorageError, match="is damaged: its"):
            node.identities.store.find_local(identifier=digest)


_REVOKE_AGAIN = (  # the table a failed re-revoke makes (troth.storage.sqlite_authority)
    "CREATE TABLE IF NOT EXISTS authority_revoke_again "
    "(kind TEXT NOT NULL, target BLOB NOT NULL, PRIMARY KEY (kind, target)) STRICT"
)
_MEMBER = "INSERT INTO members (identifier, attributes, added_by, added_at, quota_ticket) VALUES "
_TICKET = (
    "INSERT INTO tickets (code_hash, attributes, uses_left, expires_at, created_by, created_at, "
    "uses) VALUES "
)
_ISSUED = "INSERT INTO issued_credentials (id, subject, expires_at, issued_at, credential) VALUES "
_PENDING = "INSERT INTO pending_enrollments VALUES "
_ENROLLMENT = {  # the rows, the read
    "member attributes text": ((_MEMBER + "(x'01', 'abc', x'02', 5, NULL)",), "member"),
    "member attributes huge": (
        (_MEMBER + "(x'01', zeroblob(1 << 20), x'02', 5, NULL)",),
        "members",
    ),
    "member added by integer": ((_MEMBER + "(x'01', x'a0', 1 << 50, 5, NULL)",), "members"),
    "member added at text": ((_MEMBER + "(x'01', x'a0', x'02', 'now', NULL)",), "member"),
    "member quota ticket text": ((_MEMBER + "(x'01', x'a0', x'02', 5, 'abc')",), "member"),
    "ticket attributes text": ((_TICKET + "(x'01', 'abc', 1, 1 << 40, x'02', 0, 1)",), "redeem"),
    "ticket expiry text": ((_TICKET + "(x'01', x'a0', 1, 'never', x'02', 0, 1)",), "redeem"),
    "ticket uses real": ((_TICKET + "(x'01', x'a0', 1, 1 << 40, x'02', 0, 1.5)",), "redeem"),
    "issued credential text": ((_ISSUED + "(x'01', x'02', 1 << 40, 0, 'abc')",), "issued"),
    "issued credential huge": (
        (_ISSUED + "(x'01', x'02', 1 << 40, 0, zeroblob(1 << 20))",),
        "issued",
    ),
    "issued id integer": ((_ISSUED + "(1 << 50, x'02', 1 << 40, 0, NULL)",), "unexpired"),
    "issued id text": ((_ISSUED + "('abc', x'02', 1 << 40, 0, NULL)",), "live"),
    "redemption chain text": (
        ("INSERT INTO redemptions VALUES (x'01', x'02', x'03', 'abc', 1 << 40, 0)",),
        "redemption",
    ),
    "pending authority integer": ((_PENDING + "(x'01', 1 << 50, 't', 'a', 0)",), "pending"),
    "pending ticket blob": ((_PENDING + "(x'01', x'02', x'00', 'a', 0)",), "pending"),
    "pending address not utf-8": (
        (_PENDING + "(x'01', x'02', 't', CAST(x'ff' AS TEXT), 0)",),
        "every pending",
    ),
    "pending start text": ((_PENDING + "(x'01', x'02', 't', 'a', 'now')",), "every pending"),
    "announced changes text": (
        ("INSERT INTO announcements VALUES (x'01', x'02', 'abc')",),
        "announced",
    ),
    "revoke again target huge": (
        (_REVOKE_AGAIN, "INSERT INTO authority_revoke_again VALUES ('x', zeroblob(1 << 20))"),
        "again",
    ),
    "revoke again kind not utf-8": (
        (_REVOKE_AGAIN, "INSERT INTO authority_revoke_again VALUES (CAST(x'ff' AS TEXT), x'01')"),
        "again",
    ),
}


def _enrollment_read(db: SqliteDatabase, read: str) -> object:
    authority, holder = SqliteAuthorityStore(db), SqliteCredentialStore(db)
    reads: dict[str, Callable[[], object]] = {
        "member": lambda: authority.get_member(b"\x01"),
        "members": authority.list_members,
        "redeem": lambda: authority.redeem_ticket(b"\x01", NOW),
        "issued": lambda: authority.issued_credential(b"\x01"),
        "unexpired": lambda: authority.unexpired_issued(b"\x02", NOW),
        "live": lambda: authority.live_issued(b"\x02", NOW, 0),
        "redemption": lambda: authority.find_redemption(b"\x01", b"\x02", NOW),
        "pending": lambda: holder.list_pending(b"\x01"),
        "every pending": lambda: holder.every_pending(8),
        "announced": lambda: holder.announced(b"\x01", b"\x02"),
        "again": authority.revoke_again,
    }
    return reads[read]()


@pytest.mark.parametrize("what", sorted(_ENROLLMENT))
def test_a_damaged_enrollment_row_is_refused(node_db: SqliteDatabase, what: str) -> None:
    """71c rows 10 (closed by 71k): an authority's enrollment row of another type, past its
    bound, or TEXT that is not UTF-8 failed bare (TypeError, ValueError, MemoryError), was
    truncated (a REAL count), fetched whole (a MiB) or handed on as another type (a BLOB ticket
    code, a TEXT time); now StorageError saying node.db is damaged, the row left."""
    rows, read = _ENROLLMENT[what]
    for row in rows:
        node_db.execute(row)
    with pytest.raises(StorageError, match="is damaged: its"):
        _enrollment_read(node_db, read)
