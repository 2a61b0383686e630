"""The tables troth makes in node.db outside its migrations (`NODE_MIGRATIONS`), each on first
use with `CREATE TABLE IF NOT EXISTS` in the module that writes it: one registry of them, so a
restore found compares a copy's with troth's as it compares the migrations' tables
(troth.storage.planted, review 74c, planted6 1; docs/storage.md, "Rollback guard").

Each module keeps its own statements; `made_lazily` reads them from it (imported when first
asked: most of those modules sit above this layer), never a copy. A table a copy does not hold
is not compared (it is made when first used); one it holds made otherwise is refused.
`EARLIER` holds the keys and NOT NULL columns an earlier troth gave a table it has since made
otherwise, and its columns' order where that differs beyond columns added at the end (from the
git history of each statement): a copy that troth made is never refused.
"""

from __future__ import annotations

from typing import Final

__all__ = ["EARLIER", "made_lazily"]

EARLIER: Final = (
    # the broker's first lease table, keyed by a 16-byte hash handle (before locators: retired
    # when the broker opens, troth.secrets.store_schema._retire_old_leases)
    "CREATE TABLE secret_leases (handle BLOB PRIMARY KEY)",
    # its second, keyed by locator, before the account a lease's quota is counted in (retired
    # alike): `account` came in the middle, so its columns' order is another (74l planted8 1)
    "CREATE TABLE secret_leases (locator INTEGER PRIMARY KEY, handle BLOB NOT NULL, "
    "proof BLOB NOT NULL, identity BLOB NOT NULL, secret TEXT NOT NULL, engine TEXT NOT NULL, "
    "scope TEXT NOT NULL, chain_hash BLOB NOT NULL, authority BLOB NOT NULL, "
    "issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, ttl INTEGER NOT NULL, "
    "max_ttl INTEGER NOT NULL, cap_at INTEGER NOT NULL, state INTEGER NOT NULL, "
    "state_at INTEGER NOT NULL, end_reason INTEGER, engine_ref TEXT, "
    "attempts INTEGER NOT NULL DEFAULT 0)",
    # the chains' table before review 56j (chains 1) kept each chain's bytes beside its hash
    # (rewritten when the broker opens, troth.secrets.store_schema._drop_chain_bytes)
    "CREATE TABLE secret_lease_chains (chain_hash BLOB PRIMARY KEY, chain BLOB NOT NULL)",
)
"""A table's key and NOT NULL columns as an earlier troth made them, its first columns in
order (a copy's may add more after them; nothing else of its definition is compared)."""


def made_lazily() -> tuple[str, ...]:
    """Every statement that makes a table of node.db outside the migrations (with the indexes
    made beside them), as its module writes it."""
    from troth.gates.bundle_tables import TABLES as GATES
    from troth.identity import restored
    from troth.node import rotation_revoke
    from troth.node.services import policy_hold
    from troth.secrets import store_schema
    from troth.storage import sqlite_authority, store_id
    from troth.storage.planted import AUDIT_TABLE
    from troth.trace import accepted, issued_links, log_identity, outbox_store, outbox_tickets

    return (
        *GATES,
        restored._CREATE,
        restored._CREATE_FEEDS,
        restored._CREATE_ROTATED,
        rotation_revoke._CREATE,
        policy_hold._TABLE,
        *store_schema._SCHEMA,
        sqlite_authority._CREATE_HOLD,
        sqlite_authority._CREATE_AGAIN,
        *store_id._TABLES,
        AUDIT_TABLE,
        accepted._SCHEMA,
        issued_links._TABLE,
        log_identity._MADE,
        log_identity._LOST,
        *outbox_store._SCHEMA,
        *outbox_store._SOURCES,
        *outbox_store._HELD,
        *outbox_store._ROTATED,
        outbox_tickets._SCHEMA,
    )
