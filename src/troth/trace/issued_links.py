"""The newest delegation-chain link each issuer issued of the chains a trace log keeps
(docs/formats.md, "Signatures outlive rotations"; review 60b, rotation 1).

A node's rotation of an identity it holds is dated no earlier than the newest link that
identity issued of a chain the node's log keeps (`troth.trace.signed_until`; review 59i,
rotation 1). Found by a byte search of the newest MAX_ROTATION_CHAINS kept chains (review 59m,
rotation 1: read whole, it held the rotation's lock for seconds), any member of the log could
push an identity's link out of that window by having that many chains of its own kept, and a
rotation by a clock stepped back since was dated before the link (review 59o). Now each kept
chain's links are noted here, by issuer, in the transaction that keeps it, and the dating reads
one primary-key row:

    issued_links  issuer (32-byte digest) -> change (the index of the issuer's change its key
                  was attested under: the current one of the history the chain carries),
                  made_at (the link's `created_at`), link (the link as carried)
    meta          'issued_through': the rowid of `chains` through which every kept chain's
                  links are noted (rows after it are searched as before)

A row is replaced only by a link of a later change, or of the same change made later: one row
per issuer that signed a link of a chain the log keeps (no more rows than the log keeps
links), the newest under its newest change. Nothing here verifies a link: the log verified
each chain before keeping it (`chain_signed.check_appended`), and the reader verifies the row's
link against the identity it dates (a row from a chain an older troth kept unchecked, which no
longer verifies, leaves the reader to its search). The table is made on first use, by the
first append that keeps a chain; chains kept before (a log written before review 60b, or by an
older troth since) are noted ISSUED_LINKS_CATCH_UP at a time, the oldest first, by each append
that keeps one, until the mark reaches the newest.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Final

from troth import limits
from troth.credentials.format import CredentialBody, CredentialChain
from troth.errors import DecodeError
from troth.identity import UnverifiedHistory

__all__ = ["MARK", "MARK_SQL", "mark_of", "note_issued"]

MARK: Final = "issued_through"
"""The `meta` row naming the rowid of `chains` through which `issued_links` holds every link."""
_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS issued_links (issuer BLOB PRIMARY KEY, change INTEGER NOT NULL,"
    " made_at INTEGER NOT NULL, link BLOB NOT NULL) WITHOUT ROWID"
)
_NEWER: Final = (
    "INSERT INTO issued_links VALUES (?1, ?2, ?3, ?4) ON CONFLICT (issuer) DO UPDATE SET"
    " change = excluded.change, made_at = excluded.made_at, link = excluded.link"
    " WHERE (excluded.change, excluded.made_at) > (issued_links.change, issued_links.made_at)"
)
_BEHIND: Final = (
    "SELECT rowid, CASE WHEN typeof(chain) = 'blob' AND length(chain) <= "  # noqa: S608
    f"{int(limits.MAX_CHAIN_BYTES)} THEN chain END "
    "FROM chains WHERE rowid > ?1 AND rowid < ?2 ORDER BY rowid LIMIT ?3"
)
"""The chains kept before the mark, a row past what a chain takes (or not a BLOB) read as NULL,
never fetched: no chain, as a row that does not decode (review 70i, leftovers 2: a crafted 8 MiB
row was fetched whole by the next append keeping a chain)."""
MARK_SQL: Final = (
    "SELECT CASE WHEN typeof(value) = 'integer' THEN value END FROM meta WHERE name = ?"
)
"""The mark's row (`mark_of`), its value not fetched unless an INTEGER (review 70i, leftovers 2)."""


def note_issued(conn: sqlite3.Connection, added: sqlite3.Cursor, chain: bytes) -> None:
    """Note the links of `chain`, which the log verified and `added` (its INSERT OR IGNORE
    into `chains`, on `conn`, in the append's transaction) kept, and of the chains kept before
    the mark, ISSUED_LINKS_CATCH_UP of them; move the mark to the newest chain noted with every
    one before it. Nothing when `added` kept nothing (the log held the chain already)."""
    kept = added.lastrowid
    if added.rowcount != 1 or kept is None:
        return
    conn.execute(_TABLE)
    row = conn.execute(MARK_SQL, (MARK,)).fetchone()  # an INTEGER, or none (NULL)
    through = mark_of(row)
    if through < kept - 1:
        params = (through, kept, limits.ISSUED_LINKS_CATCH_UP)
        for rowid, older in conn.execute(_BEHIND, params).fetchall():
            _note(conn, older)
            through = rowid
    _note(conn, chain)
    if through >= kept - 1:
        through = max(through, kept)
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (MARK, through))


def mark_of(row: tuple[object, ...] | None) -> int:
    """The rowid the mark row `row` names; 0 (every kept chain is searched) without one."""
    value = None if row is None else row[0]
    return value if isinstance(value, int) else 0


def _note(conn: sqlite3.Connection, chain: object) -> None:
    """Note each link of `chain` (a `chains` row's bytes) whose issuer's history it carries."""
    for link in _links(chain):
        with contextlib.suppress(OverflowError):  # (a time past SQLite's integers)
            conn.execute(_NEWER, link)


def _links(chain: object) -> list[tuple[bytes, int, int, bytes]]:
    """(issuer digest, change, made_at, link) of each link of `chain`; none when it is no
    chain (a row an older troth kept unchecked)."""
    if not isinstance(chain, bytes):
        return []
    try:
        decoded = CredentialChain.decode(chain)
        changes: dict[bytes, int] = {}
        for carried in decoded.histories:
            history = UnverifiedHistory.decode(carried)
            changes[history.identifier_digest] = history.first_index + len(history.changes) - 1
        links = []
        for link in decoded.credentials:
            body = CredentialBody.decode(link.body)
            change = changes.get(body.issuer.digest)
            if change is not None:
                links.append((body.issuer.digest, change, body.created_at, link.encode()))
    except (DecodeError, ValueError, TypeError, IndexError):
        return []
    return links
