"""node.db's schema: its migrations, applied in order by `SqliteDatabase` (troth.storage.sqlite);
`PRAGMA user_version` records how many ran (docs/storage.md, "Schema").

Each migration runs in the transaction that raises the version, so a process killed part way
leaves the version and the schema before it. A migration may run again over a schema that
already has it (a node.db whose version was set back: the tests that undo migrations do), so
the later ones are written to be idempotent (`IF NOT EXISTS`, a column added only when
missing).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

from troth.storage.raised_times import keep_raise_times_in_counts

__all__ = ["NODE_MIGRATIONS", "PENDING_BY_TICKET", "Migration"]

Migration = str | Callable[[sqlite3.Connection], None]
"""One schema migration: SQL statements (separated by `;`), or a function that migrates
through the connection it is given (inside the migrating transaction)."""


_QUOTA_COLUMNS: Final = (
    ("members", "quota_ticket", "BLOB"),
    ("tickets", "uses", "INTEGER"),
)


def _share_ticket_quotas(conn: sqlite3.Connection) -> None:
    """Schema 21 (review 71e, quota; review 70q, feeds 2): `members.quota_ticket`, the code hash
    of the ticket of many uses whose revocation quota the member shares with the other members
    it enrolled (NULL: the member's own, as for a single-use ticket and for every member
    enrolled before this migration), and `tickets.uses`, how many uses a ticket was made with
    (NULL for a ticket made before it: its members share its quota, its uses not known).
    Each column added only when missing, so the migration runs again over a migrated node.db
    (one whose version was set back) and changes nothing."""
    for table, column, kind in _QUOTA_COLUMNS:
        names = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in names:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


# Schema migrations, applied in order; PRAGMA user_version records how many ran.
NODE_MIGRATIONS: Final[tuple[Migration, ...]] = (
    """
    -- key_id: a random 63-bit integer (the rowid itself: one B-tree, never reused)
    CREATE TABLE vault_keys (
        key_id INTEGER PRIMARY KEY, key_type INTEGER NOT NULL, purpose INTEGER NOT NULL,
        sealed BLOB NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE vault_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE identities (
        identifier BLOB PRIMARY KEY, history BLOB NOT NULL, changes INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        -- set for local identities (this node holds the primary key), NULL for imported ones
        primary_key TEXT, name TEXT, created_at INTEGER
    );
    CREATE UNIQUE INDEX identities_name ON identities (name) WHERE name IS NOT NULL;
    CREATE TABLE purpose_keys (
        identifier BLOB NOT NULL REFERENCES identities(identifier), purpose INTEGER NOT NULL,
        key_handle TEXT NOT NULL, attestation BLOB NOT NULL, PRIMARY KEY (identifier, purpose)
    );
    """,
    """
    -- the authority hosted by this node (at most one)
    CREATE TABLE authority (
        identifier BLOB PRIMARY KEY, name TEXT NOT NULL, credential_ttl INTEGER NOT NULL,
        delegation_depth INTEGER NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE members (
        identifier BLOB PRIMARY KEY, attributes BLOB NOT NULL, added_by BLOB NOT NULL,
        added_at INTEGER NOT NULL
    );
    -- enrollment tickets: only the SHA-256 of the code is stored
    CREATE TABLE tickets (
        code_hash BLOB PRIMARY KEY, attributes BLOB NOT NULL, uses_left INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, created_by BLOB NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE issued_credentials (
        id BLOB PRIMARY KEY, subject BLOB NOT NULL, expires_at INTEGER NOT NULL,
        issued_at INTEGER NOT NULL
    );
    CREATE INDEX issued_by_subject ON issued_credentials (subject, expires_at);
    CREATE TABLE revocations (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, head BLOB NOT NULL);
    -- credentials (chains) held by this node's identities
    CREATE TABLE held_credentials (
        identifier BLOB NOT NULL, id BLOB NOT NULL, chain BLOB NOT NULL, authority BLOB NOT NULL,
        expires_at INTEGER NOT NULL, stored_at INTEGER NOT NULL, PRIMARY KEY (identifier, id)
    );
    -- the newest revocation feed this node has verified, per authority
    CREATE TABLE feeds (
        authority BLOB PRIMARY KEY, feed BLOB NOT NULL, count INTEGER NOT NULL,
        issued_at INTEGER NOT NULL
    );
    """,
    """
    -- authorities this node trusts (it enrolled with them), and the route to reach each
    CREATE TABLE trusted_authorities (
        identifier BLOB PRIMARY KEY, address TEXT NOT NULL, added_at INTEGER NOT NULL
    );
    """,
    """
    -- pre-rotation: the handle of a local identity's committed next primary key (NULL for
    -- imported identities), used only by the rotation that reveals it
    ALTER TABLE identities ADD COLUMN next_key TEXT;
    """,
    """
    -- revocation feed v2 (docs/formats.md, "Revocation feed"): v1 entries are not carried over
    -- (nothing was released). The authority's entries, with the fields they are looked up by:
    -- one revocation per credential or identity (idempotence), the newest supersession per
    -- identifier, and the entries charged to each member in the last hour (its quota)
    DROP TABLE revocations;
    CREATE TABLE revocations (
        seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, head BLOB NOT NULL, kind INTEGER NOT NULL,
        target BLOB NOT NULL, revoked_at INTEGER NOT NULL, charged_to BLOB, changes INTEGER,
        change_hash BLOB
    );
    CREATE UNIQUE INDEX revocations_once ON revocations (kind, target) WHERE kind < 3;
    CREATE INDEX revocations_superseded ON revocations (target, changes) WHERE kind = 3;
    CREATE INDEX revocations_charged ON revocations (charged_to, revoked_at)
        WHERE charged_to IS NOT NULL;
    ALTER TABLE authority ADD COLUMN revocation_quota INTEGER NOT NULL DEFAULT 100;
    -- a holder's verified copy of each authority's feed: where it ends, and its entries (the
    -- in-memory index is rebuilt from them without verifying again)
    DROP TABLE feeds;
    CREATE TABLE feed_state (
        authority BLOB PRIMARY KEY, count INTEGER NOT NULL, head BLOB NOT NULL,
        latest INTEGER NOT NULL, issued_at INTEGER NOT NULL
    );
    CREATE TABLE feed_entries (
        authority BLOB NOT NULL, seq INTEGER NOT NULL, kind INTEGER NOT NULL,
        target BLOB NOT NULL, changes INTEGER, change_hash BLOB, PRIMARY KEY (authority, seq)
    ) WITHOUT ROWID;
    -- up to which change count each local identity's rotation was announced to each authority
    CREATE TABLE announcements (
        identifier BLOB NOT NULL, authority BLOB NOT NULL, changes INTEGER NOT NULL,
        PRIMARY KEY (identifier, authority)
    );
    """,
    """
    -- a local identity's changes, one row per change, never rewritten (docs/storage.md,
    -- "Identities"): from the first rotation whose presented history is cut (it adds every
    -- change), each rotation adds its own, and `change_rows` counts them (0: none yet)
    CREATE TABLE identity_changes (
        identifier BLOB NOT NULL, idx INTEGER NOT NULL, body BLOB NOT NULL,
        signature BLOB NOT NULL, previous_signature BLOB, change_hash BLOB NOT NULL,
        PRIMARY KEY (identifier, idx)
    ) WITHOUT ROWID;
    ALTER TABLE identities ADD COLUMN change_rows INTEGER NOT NULL DEFAULT 0;
    -- the supersessions of a holder's feeds by identifier: checkpoints of local histories
    CREATE INDEX feed_entries_superseded ON feed_entries (target, changes) WHERE kind = 3;
    -- the authority: which credential each ticket redemption issued (a repeat of the same
    -- enrollment is answered with it: never a second credential, never a second use)
    CREATE TABLE redemptions (
        code_hash BLOB NOT NULL, member BLOB NOT NULL, credential BLOB NOT NULL,
        chain BLOB NOT NULL, ticket_expires_at INTEGER NOT NULL, redeemed_at INTEGER NOT NULL,
        PRIMARY KEY (code_hash, member)
    );
    -- a holder's enrollment recorded before its request is sent, cleared when the
    -- credential is stored (resumed after a crash)
    CREATE TABLE pending_enrollments (
        identifier BLOB NOT NULL, authority BLOB NOT NULL, ticket TEXT NOT NULL,
        address TEXT NOT NULL, started_at INTEGER NOT NULL, PRIMARY KEY (identifier, authority)
    );
    """,
    """
    -- the authorities whose chains this node verified for an identity, when the newest of
    -- them expires, the member at its root (whose share of the rows it counts against), and
    -- whether a sweep found that authority's word on it (kept for good): their word on it
    -- counts whatever it shows later (docs/storage.md, "Vouchers")
    CREATE TABLE vouchers (
        identifier BLOB NOT NULL, authority BLOB NOT NULL, expires_at INTEGER NOT NULL,
        member BLOB NOT NULL, kept INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (identifier, authority)
    ) WITHOUT ROWID;
    CREATE INDEX vouchers_lapsed ON vouchers (authority, expires_at) WHERE kept = 0;
    CREATE INDEX vouchers_member ON vouchers (member, authority, expires_at) WHERE kept = 0;
    """,
    """
    -- the authority: each member credential as it went out (without the authority's
    -- history), answered again at the member's bound of live credentials (review 25,
    -- authority 2), NULL for a VC export and for rows written before this migration
    ALTER TABLE issued_credentials ADD COLUMN credential BLOB;
    """,
    """
    -- the changes of stored copies shown made up (troth.identity.known: review 26b, refuted
    -- 2), written in the transaction that replaced the copy: an authority whose held feed
    -- names one of them holds no voucher for that identity, in any process, after a restart
    -- too (docs/storage.md, "Vouchers")
    CREATE TABLE refuted_changes (
        identifier BLOB NOT NULL, idx INTEGER NOT NULL, change_hash BLOB NOT NULL,
        PRIMARY KEY (identifier, idx, change_hash)
    ) WITHOUT ROWID;
    """,
    """
    -- review 27h, gap: the oldest change (index, hash) of the history a voucher's chains were
    -- verified with (NULL: every history, as for the rows written before this migration),
    -- and whether a stored copy's link to its identifier was checked here (a full history, or
    -- one extending such a copy) rather than only a checkpoint's word (1 for older rows): a
    -- copy from a checkpoint binds a full history only when an authority attesting it has
    -- standing over that history (docs/formats.md, "A stored copy from a checkpoint")
    ALTER TABLE vouchers ADD COLUMN since_idx INTEGER;
    ALTER TABLE vouchers ADD COLUMN since_hash BLOB;
    ALTER TABLE identities ADD COLUMN linked INTEGER NOT NULL DEFAULT 1;
    """,
    """
    -- review 30a, refuted 1: the replaced copy each refuted change was recorded with, in order
    -- (0 for older rows): past MAX_REFUTED_CHANGES rows the oldest copies' rows go first
    ALTER TABLE refuted_changes ADD COLUMN copy_seq INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX refuted_copies ON refuted_changes (copy_seq);
    """,
    """
    -- review 39b, mcp 2: the authorities whose bundles grant a published MCP server's tools,
    -- by the server's name (space-separated identifiers), recorded when they were first fixed
    -- (or named): the same name published again naming none keeps them across restarts
    -- (docs/policy.md, "MCP over secure channels", and docs/formats.md, "mcp_grantors")
    CREATE TABLE IF NOT EXISTS mcp_grantors (
        name TEXT PRIMARY KEY, grantors TEXT NOT NULL, recorded_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    -- review 47f, rotate 1 and token keys 1: the keys a rotation (or a purpose key's
    -- renewal) retired from a vault whose keys are not rows here (a PKCS#11 token's), and
    -- the token keys a compromised rotation withdrew, by handle, written in the transaction
    -- that retires them and deleted once the vault deleted the keys: a process killed in
    -- between leaves them here for the next one to delete
    -- (`IdentityService.forget_retired`, docs/storage.md "Recovery rules")
    CREATE TABLE IF NOT EXISTS retired_keys (handle TEXT PRIMARY KEY) WITHOUT ROWID;
    """,
    """
    -- review 48m, revcrash 2: the authorities a link revocation made here is under way with,
    -- and where each is reached, written (committed) before the authority is asked and
    -- deleted once this node's copy of its feed holds the entry: a process killed in between
    -- leaves it here, and the node syncs that feed before it hands out a chain of that
    -- authority again (docs/credentials.md, "Revocation is real", and docs/storage.md)
    CREATE TABLE IF NOT EXISTS feed_syncs_due (
        id INTEGER PRIMARY KEY, authority BLOB NOT NULL, address TEXT NOT NULL,
        marked_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS feed_syncs_due_authority ON feed_syncs_due (authority);
    """,
    """
    -- review 49c, forks 1: verified histories refused as forks of the stored copy, kept as
    -- evidence (their first change the stored copy does not hold is signed with the
    -- identity's keys, as the stored copy's change at that index is: two rotations, one by
    -- a copy's holder), the first MAX_FORKS_PER_IDENTITY of an identity and MAX_FORK_RECORDS
    -- in all (`IdentityService.forks`, docs/storage.md "Schema")
    CREATE TABLE IF NOT EXISTS identity_forks (
        seq INTEGER PRIMARY KEY, identifier BLOB NOT NULL, change_hash BLOB NOT NULL,
        idx INTEGER NOT NULL, history BLOB NOT NULL, seen_at INTEGER NOT NULL,
        UNIQUE (identifier, change_hash)
    );
    """,
    """
    -- review 51d, rollback 1-2: each scope's count of the irreversible writes this store
    -- made (a ticket redeemed, a lease revoked: troth.storage.rollback), raised in the
    -- transaction of the write, and the guard file beside node.db (`node.db.guard`) raised
    -- to it after the commit: a store whose count is behind its guard's is a restored copy.
    -- `restored_*`: the last time one was found, and what it was found with (node status)
    CREATE TABLE IF NOT EXISTS rollback_counters (
        scope TEXT PRIMARY KEY, counter INTEGER NOT NULL, restored_at INTEGER,
        restored_counter INTEGER, restored_guard INTEGER, restored_voided INTEGER
    ) WITHOUT ROWID;
    """,
    """
    -- review 53h, due 2: a mark's number (its id) is never given twice (AUTOINCREMENT): a
    -- node whose syncs of an authority stopped at its newest mark tries once more at a newer
    -- one (troth.node.duetries), and SQLite gave a deleted newest row's id again, so a mark
    -- made after a sync elsewhere cleared that one read as not newer. The rows keep their ids
    CREATE TABLE feed_syncs_due_ids (
        id INTEGER PRIMARY KEY AUTOINCREMENT, authority BLOB NOT NULL, address TEXT NOT NULL,
        marked_at INTEGER NOT NULL
    );
    INSERT INTO feed_syncs_due_ids (id, authority, address, marked_at)
        SELECT id, authority, address, marked_at FROM feed_syncs_due;
    DROP TABLE feed_syncs_due;
    ALTER TABLE feed_syncs_due_ids RENAME TO feed_syncs_due;
    CREATE INDEX feed_syncs_due_authority ON feed_syncs_due (authority);
    """,
    """
    -- review 54x, identity 1: the source of an identity's fork evidence, the member at the
    -- root of the first voucher row recorded for it, written once (a later chain renewing or
    -- adding a row never moves it) and dropped with its last voucher row. For the rows
    -- before this migration, whose first is not known, the lowest member (the rule before)
    -- (docs/storage.md, "Schema")
    CREATE TABLE IF NOT EXISTS voucher_sources (
        identifier BLOB PRIMARY KEY, member BLOB NOT NULL
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO voucher_sources (identifier, member)
        SELECT identifier, min(member) FROM vouchers GROUP BY identifier;
    """,
    keep_raise_times_in_counts,  # review 66i, rotate 1: a scope's raise time in its count's row
    """
    -- review 69f, enroll 1: an observed copy's linked = 1, review 27h's default or a link
    -- checked since (not told apart), is 2, not known (docs/storage.md, "Identities")
    UPDATE identities SET linked = 2 WHERE linked = 1 AND primary_key IS NULL;
    """,
    _share_ticket_quotas,  # review 71e, quota (70q feeds 2): a ticket's members share a quota
)

PENDING_BY_TICKET: Final = (
    """
    CREATE TABLE pending_enrollments_by_ticket (
        identifier BLOB NOT NULL, authority BLOB NOT NULL, ticket TEXT NOT NULL,
        address TEXT NOT NULL, started_at INTEGER NOT NULL,
        PRIMARY KEY (identifier, authority, ticket)
    )
    """,
    "INSERT INTO pending_enrollments_by_ticket "
    "SELECT identifier, authority, ticket, address, started_at FROM pending_enrollments "
    "ORDER BY started_at",
    "DROP TABLE pending_enrollments",
    "ALTER TABLE pending_enrollments_by_ticket RENAME TO pending_enrollments",
)
"""Review 61l, enrollment 1: one pending enrollment per identity, authority and TICKET (it was
one per identity and authority, so an enrollment with another ticket replaced the record of
one whose member the authority may have made, its answer lost). The table rebuilt with that
key, its rows kept (their rowids, the order they were recorded in, follow `started_at`), when
the store is opened on a node.db made before it (troth.storage.sqlite_credentials), as a
migration is (`SqliteDatabase`); the columns are the same, so an earlier troth still reads and
writes it. Either key is troth's (troth.storage.planted)."""
