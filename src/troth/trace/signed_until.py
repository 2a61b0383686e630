"""Until when an identity signed what a node's trace log holds: the time of its newest record
there, and, for the log's own identity, of the log's newest checkpoint (docs/formats.md,
"Signatures outlive rotations"). A rotation the node makes of an identity it holds is dated no
earlier (`troth.node.rotation`): a record may be dated up to 300 s ahead of the log, and a
rotation dated before it retires the record's key before the record by the rule, so every
later verification of the log named the record `signed by a key after its retirement`, though
its key was current when it entered the log (review 58c, trace 3; review 59b, trace 2 for the
log identity's checkpoints), and of the newest link it issued of a delegation chain the log
keeps (review 59i, rotation 1: `troth trace verify` judges each link's key by the node's rows,
so a rotation dated before a link dated ahead named the record under that chain
CREDENTIAL_INVALID), read from the log's `issued_links` (`troth.trace.issued_links`: review 60b,
rotation 1, a search of the newest kept chains alone was flooded by any member's own chains).

Read with a read-only connection of its own: a node that holds no log is not given one, and a
log that cannot be read (damaged, another format, locked past a short wait) answers None, so
nothing here can refuse a rotation (a compromised key must always be rotatable).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Final

from troth import limits
from troth.credentials.format import CredentialBody, CredentialChain, SignedCredential
from troth.encoding import cbor
from troth.errors import DecodeError, IdentityError
from troth.identity import VerifiedIdentity
from troth.identity.signer import verify_signed_by
from troth.trace.issued_links import MARK, MARK_SQL, mark_of

__all__ = ["signed_until"]

_TIME: Final = "CASE WHEN typeof(time) = 'integer' THEN time END"
_NEWEST: Final = (
    f"SELECT max(t) FROM (SELECT {_TIME} AS t FROM agents WHERE agent = ?1 "  # noqa: S608
    f"UNION ALL SELECT (SELECT {_TIME} FROM checkpoints ORDER BY size DESC LIMIT 1) "
    "WHERE EXISTS (SELECT 1 FROM meta WHERE name = 'log_identity' AND value = ?1))"
)
"""The agent's head (`agents`: the time of its newest record, times never decreasing along
its chain) and, when the identity is the log's, its newest checkpoint (never dated before an
earlier one): two primary-key look-ups and one of `meta`, however long the log. A time that is
no INTEGER dates nothing, never fetched (review 70i, leftovers 2: an 8 MiB one was)."""
_LINK_BYTES: Final = limits.MAX_CHAIN_BYTES
"""Largest link a row of `issued_links` is decoded from: one of a chain the log keeps."""
_ISSUED: Final = (
    "SELECT CASE WHEN typeof(change) = 'integer' THEN change END, "  # noqa: S608
    f"CASE WHEN typeof(link) = 'blob' AND length(link) <= {int(_LINK_BYTES)} THEN link END "
    "FROM issued_links WHERE issuer = ?"
)
"""The newest link the identity issued of the chains the log keeps through the mark, under its
newest change there (`troth.trace.issued_links`; review 60b, rotation 1): one primary-key row,
a link past `_LINK_BYTES` not fetched (no answer: review 70i, leftovers 2)."""
_CHAINS: Final = (
    "SELECT chain FROM "  # noqa: S608
    "(SELECT chain FROM chains WHERE rowid > ?3 ORDER BY rowid DESC LIMIT ?2) "
    f"WHERE typeof(chain) = 'blob' AND length(chain) <= {int(limits.MAX_CHAIN_BYTES)} "
    "AND instr(chain, ?1) > 0"
)
"""Of the newest MAX_ROTATION_CHAINS chains kept (the table's insertion order) after the rowid
`?3` (the mark of `issued_links`: none in a log whose appends note every chain they keep),
those holding the identity's 32-byte digest (an issuer's or a subject's: each link's body is
carried whole), found by a byte search in SQLite, so only those are decoded, and only its links
verified (review 59i, rotation 1). Read whole, the table held the rotation's write lock for
seconds on an authority's log (review 59m, rotation 1). A row past what a chain takes is no
chain, never fetched (review 70i, leftovers 2: an 8 MiB one holding the digest was)."""
_WAIT_SECONDS: Final = 0.05
"""How long the read waits for a lock (a WAL reader rarely does): it runs inside the
rotation's write lock on node.db, and a log not read in time dates nothing."""


def signed_until(log: Path, identity: VerifiedIdentity) -> int | None:
    """The time of the newest record signed by `identity` in the trace log at `log`, of the
    log's newest checkpoint if it is the log's identity, or of the newest delegation chain
    link it issued under its current change that the log keeps, whichever is latest; None
    when there is none, no file, or the file cannot be read."""
    if not log.is_file():
        return None
    try:
        conn = sqlite3.connect(
            f"{log.absolute().as_uri()}?mode=ro", uri=True, timeout=_WAIT_SECONDS
        )
        try:
            row = conn.execute(_NEWEST, (identity.identifier.digest,)).fetchone()
            newest = None if row is None or row[0] is None else int(row[0])
            issued = _newest_link(conn, identity)
        finally:
            conn.close()
    except (sqlite3.Error, ValueError, TypeError, OverflowError):
        return None
    return newest if issued is None else max(issued, newest or issued)


def _newest_link(conn: sqlite3.Connection, identity: VerifiedIdentity) -> int | None:
    """When the newest link `identity` issued under its current change (the key a rotation
    retires) of the chains the log keeps was made; None without one, or when the tables cannot
    be read. The log's `issued_links` row answers for the chains kept through its mark, which
    the search of the newest chains after it completes (review 60b, rotation 1: searched alone,
    any member of the log pushed the link out of it with chains of its own); a row that does not
    verify (a chain kept unchecked by a log before review 56f) leaves the search to every chain
    kept, as before."""
    try:
        row = conn.execute(MARK_SQL, (MARK,)).fetchone()
        through = mark_of(row)
        try:
            issued = conn.execute(_ISSUED, (identity.identifier.digest,)).fetchone()
        except sqlite3.OperationalError:  # no table: no append of review 60b kept a chain
            issued = None
    except sqlite3.Error:
        return None
    noted = None
    if issued is not None:
        noted, verified = _noted(issued, identity)
        through = through if verified else 0
    found = [made for made in (noted, _searched(conn, identity, through)) if made is not None]
    return max(found, default=None)


def _noted(row: tuple[object, object], identity: VerifiedIdentity) -> tuple[int | None, bool]:
    """When the link of `issued_links`'s `row` for `identity` was made, if it was issued under
    the identity's current change, and whether the row is its own: a link of an older change
    (the identity rotated since) dates nothing, as no link of the current change was kept
    through the mark (a row is replaced by any link of a later change); one that does not
    verify, or of a change past the current one, is no answer (False)."""
    change, link = row
    if isinstance(change, int) and change < identity.current.index:
        return None, True
    if not isinstance(link, bytes):  # (a row a hand wrote may hold any type)
        return None, False
    try:
        signed = SignedCredential.from_cbor(cbor.decode(link, max_bytes=_LINK_BYTES))
        made = CredentialBody.decode(signed.body)
        if change != identity.current.index or made.issuer != identity.identifier:
            return None, False
        verify_signed_by(
            identity, signed.attestation, signed.body, signed.signature, at=made.created_at
        )
    except (DecodeError, IdentityError, ValueError, TypeError):
        return None, False
    return made.created_at, True


def _searched(conn: sqlite3.Connection, identity: VerifiedIdentity, through: int) -> int | None:
    """When the newest link `identity` issued under its current change, of the newest
    MAX_ROTATION_CHAINS chains the log kept after rowid `through`, was made; None without one,
    or when the table cannot be read. A link counts only when its signature and attestation
    verify under that change (a chain kept unchecked, by a log written before review 56f,
    dates nothing `identity` did not sign), the newest first: one verification for an honest
    log, MAX_ROTATION_CHAINS at most."""
    issued: list[tuple[int, SignedCredential]] = []
    try:
        params = (identity.identifier.digest, limits.MAX_ROTATION_CHAINS, through)
        for (chain,) in conn.execute(_CHAINS, params):
            with contextlib.suppress(DecodeError, ValueError, TypeError):
                for link in CredentialChain.decode(bytes(chain)).credentials:
                    made = CredentialBody.decode(link.body)
                    if made.issuer == identity.identifier:
                        issued.append((made.created_at, link))
    except sqlite3.Error:
        return None
    newest_first = sorted(issued, key=lambda entry: entry[0], reverse=True)
    for made_at, link in newest_first[: limits.MAX_ROTATION_CHAINS]:  # (review 59m, rotation 1)
        try:
            verify_signed_by(identity, link.attestation, link.body, link.signature, at=made_at)
        except IdentityError:
            continue
        return made_at
    return None
