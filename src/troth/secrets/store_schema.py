"""The broker's tables (troth.secrets.store lists them): created `IF NOT EXISTS` when a store
opens, and a table of an older troth's layout migrated or refused (split from
troth.secrets.store). Docs: docs/formats.md ("Leases")."""

from __future__ import annotations

import sqlite3
from typing import Final

from troth.errors import ConfigError
from troth.secrets.lease import LeaseState
from troth.storage import SqliteDatabase

__all__ = ["CONFIG_AND_LIVE", "INSERT_LEASE", "create_tables"]

_SCHEMA_CHAINS: Final = (
    "CREATE TABLE IF NOT EXISTS secret_lease_chains (chain_hash BLOB PRIMARY KEY) WITHOUT ROWID"
)

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS secret_store (
        name TEXT PRIMARY KEY, engine TEXT NOT NULL, config TEXT NOT NULL,
        sealed BLOB NOT NULL, updated_at INTEGER NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS secret_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    """CREATE TABLE IF NOT EXISTS secret_signing_keys (
        kid TEXT PRIMARY KEY, handle TEXT NOT NULL, created_at INTEGER NOT NULL,
        retired_at INTEGER
    )""",
    # the current token key (`current_signing_kid`, read by every issue's one query): its
    # newest unretired row straight from this index, not a scan and a sort of the table
    """CREATE INDEX IF NOT EXISTS secret_signing_keys_current
        ON secret_signing_keys (created_at, kid) WHERE retired_at IS NULL""",
    """CREATE TABLE IF NOT EXISTS secret_leases (
        locator INTEGER PRIMARY KEY, handle BLOB NOT NULL, proof BLOB NOT NULL,
        identity BLOB NOT NULL, account BLOB NOT NULL, secret TEXT NOT NULL,
        engine TEXT NOT NULL, scope TEXT NOT NULL, chain_hash BLOB NOT NULL,
        authority BLOB NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        ttl INTEGER NOT NULL, max_ttl INTEGER NOT NULL, cap_at INTEGER NOT NULL,
        state INTEGER NOT NULL, state_at INTEGER NOT NULL, end_reason INTEGER,
        engine_ref TEXT, attempts INTEGER NOT NULL DEFAULT 0,
        retry_at INTEGER NOT NULL DEFAULT 0, request BLOB, request_attempt INTEGER
    )""",
    """CREATE INDEX IF NOT EXISTS secret_leases_live
        ON secret_leases (state, account, expires_at)""",
    # the expired ACTIVE leases that still hold an upstream object (review 48f, quota 1, counts
    # them in the quota): partial, so a token lease (no engine_ref) adds no entry, and the
    # issue's count reads only them, not every expired token lease of the account
    # (secrets.token.issue 2.05x -> 4.4x its floor with the count on secret_leases_live)
    """CREATE INDEX IF NOT EXISTS secret_leases_upstream
        ON secret_leases (account, state, expires_at) WHERE engine_ref IS NOT NULL""",
    # review 46d's index of ended leases' chains cost every lease an index entry when it
    # ended (secrets.token.issue 2.05x -> 2.8-3.0x its floor): `prune_chains` scans instead
    "DROP INDEX IF EXISTS secret_leases_ended_chain",
    # the chains leases were issued under, by hash alone: their bytes, up to MAX_CHAIN_BYTES,
    # were kept too, with the ended leases, and nothing read them (review 56j, chains 1)
    _SCHEMA_CHAINS,
    """CREATE TABLE IF NOT EXISTS secret_lease_members (
        member BLOB NOT NULL, chain_hash BLOB NOT NULL, PRIMARY KEY (member, chain_hash)
    ) WITHOUT ROWID""",
    # the members of a chain, for the open leases' chains at each feed (review 30b, store 3)
    """CREATE INDEX IF NOT EXISTS secret_lease_members_chain
        ON secret_lease_members (chain_hash)""",
    """CREATE TABLE IF NOT EXISTS secret_lease_accounts (
        identity BLOB NOT NULL, account BLOB NOT NULL, PRIMARY KEY (identity, account)
    ) WITHOUT ROWID""",
)


def _insert_lease(engine_ref: bool, request: bool) -> str:
    columns = (
        "locator, handle, identity, account, secret, engine, scope, chain_hash, authority, "
        "issued_at, expires_at, ttl, max_ttl, cap_at, state, state_at, proof"
        + (", engine_ref" if engine_ref else "")
        + (", request, request_attempt" if request else "")
    )
    marks = ", ".join("?" * (columns.count(",") + 1))
    return f"INSERT INTO secret_leases ({columns}) VALUES ({marks})"  # noqa: S608 (constants)


INSERT_LEASE: Final = {
    (engine_ref, request): _insert_lease(engine_ref, request)
    for engine_ref in (False, True)
    for request in (False, True)
}
"""The INSERT of a new lease, by (whether it has an engine_ref, whether a request asked for
it): the columns a new lease leaves NULL (its end_reason, and these when it has none) are not
named, their default being NULL: CPython's sqlite3 looks an adapter up for each None bound
(~0.25 us; a token lease left 4: review 50m)."""


_PENDING, _ACTIVE, _REVOKING = (
    int(LeaseState.PENDING),
    int(LeaseState.ACTIVE),
    int(LeaseState.REVOKING),
)

CONFIG_AND_LIVE: Final = (
    "SELECT (SELECT kid FROM secret_signing_keys WHERE retired_at IS NULL "  # noqa: S608
    "ORDER BY created_at DESC, kid DESC LIMIT 1), "
    "secret.engine, COALESCE((SELECT value FROM secret_meta WHERE name = ?5), 0), "
    "secret.config, "
    # the states are constants written into the query, not bound at each issue (review 53a);
    # the four ranges are one compound under one LIMIT (61m: one subquery, not four summed)
    "(SELECT COUNT(*) FROM (SELECT 1 FROM secret_leases WHERE account = ?1 "
    f"AND state = {_PENDING} UNION ALL SELECT 1 FROM secret_leases WHERE account = ?1 "
    f"AND state = {_REVOKING} UNION ALL SELECT 1 FROM secret_leases WHERE account = ?1 "
    f"AND state = {_ACTIVE} AND expires_at > ?2 UNION ALL "
    "SELECT 1 FROM secret_leases INDEXED BY secret_leases_upstream "
    f"WHERE account = ?1 AND state = {_ACTIVE} AND expires_at <= ?2 AND engine_ref IS NOT NULL "
    "LIMIT ?3)) "
    # one row, whether the secret exists or not; its row looked up once (review 50m)
    "FROM (SELECT 1) LEFT JOIN secret_store AS secret ON secret.name = ?4"
)
"""The issue's one read (`SqliteSecretStore.config_and_live`): the current token key's kid,
the secret's engine, the chains' epoch, its config, and the account's leases held against its
quota, counted up to ?3 in all (?1 the account, ?2 now, ?4 the secret, ?5 the epoch's row; the
states PENDING, REVOKING and ACTIVE written in). Each state is an equality range of
`secret_leases_live`: `state IN (?, ?)` built its list as an ephemeral B-tree at every issue
(review 51c, issue 1). The ranges are the arms of one `UNION ALL` under one LIMIT, not four
counts summed, each under its own: 109 VDBE steps, not 156 (review 61m); the sets are
disjoint (unexpired ACTIVE, expired ACTIVE with an upstream object), so none counts twice."""


def create_tables(conn: sqlite3.Connection, db: SqliteDatabase) -> None:
    """Create the broker's tables on `conn` (`db`'s, in the caller's transaction): an older
    layout's lease table retired first, then older tables given their new columns."""
    _retire_old_leases(conn, db)
    for statement in _SCHEMA:
        conn.execute(statement)
    _add_columns(conn)
    _drop_chain_bytes(conn)


def _retire_old_leases(conn: sqlite3.Connection, db: SqliteDatabase) -> None:
    """A `secret_leases` table of an older layout (the first, keyed by a 16-byte hash handle,
    before locators; the second, without the account a lease's quota is counted in) is dropped
    when none of its leases is open (ended ones stay in the audit log); with open leases the
    broker refuses to open: their handles have no locator, or their quota no account."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(secret_leases)")}
    if not columns or {"locator", "account"} <= columns:
        return
    if conn.execute(
        "SELECT 1 FROM secret_leases WHERE state <> ? LIMIT 1", (int(LeaseState.REVOKED),)
    ).fetchone():
        raise ConfigError(
            f"{db.path} holds open leases in the layout of an older troth: "
            "revoke them with that troth first, or give this broker a new node database"
        )
    conn.execute("DROP TABLE secret_leases")  # its indexes go with it


def _add_columns(conn: sqlite3.Connection) -> None:
    """Give a `secret_leases` table made before revocation retries backed off (review 45b,
    revocations 1) its `retry_at` column (0: due now), and one made before lease requests
    (review 45i, secrets 2) its `request` and `request_attempt` (NULL: none); then the
    requests' index, by request and attempt (partial: a lease issued without one adds no
    entry; its highest attempt is one look-up: review 45k, secrets 2)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(secret_leases)")}
    if "retry_at" not in columns:
        conn.execute("ALTER TABLE secret_leases ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0")
    if "request" not in columns:
        conn.execute("ALTER TABLE secret_leases ADD COLUMN request BLOB")
        conn.execute("ALTER TABLE secret_leases ADD COLUMN request_attempt INTEGER")
    conn.execute("DROP INDEX IF EXISTS secret_leases_request")  # by request alone (45i)
    conn.execute(
        "CREATE INDEX IF NOT EXISTS secret_leases_request_attempt "
        "ON secret_leases (request, request_attempt) WHERE request IS NOT NULL"
    )


def _drop_chain_bytes(conn: sqlite3.Connection) -> None:
    """Rewrite a `secret_lease_chains` table made before review 56j (chains 1), which kept each
    chain's bytes beside its hash, as the hashes alone: the bytes, up to MAX_CHAIN_BYTES a chain
    and kept as long as an ended lease referred to it, were never read (a renewal presents the
    chain again, a feed's revocation reads `secret_lease_members`). Its hashes are kept, so a
    chain's members are still deleted with it by `prune_chains`."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(secret_lease_chains)")}
    if "chain" not in columns:
        return
    conn.execute("ALTER TABLE secret_lease_chains RENAME TO secret_lease_chains_old")
    conn.execute(_SCHEMA_CHAINS)
    conn.execute(
        "INSERT INTO secret_lease_chains (chain_hash) "
        "SELECT chain_hash FROM secret_lease_chains_old"
    )
    conn.execute("DROP TABLE secret_lease_chains_old")
