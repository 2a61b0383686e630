"""The broker's tables in the node's SQLite database (created here, `IF NOT EXISTS`).

    secret_store         upstream secrets: name, engine, JSON config, the value sealed by the
                         vault's seal key (AAD binds it to its name and engine)
    secret_meta          the seal key's handle, the sealed audit key, the broker id
    secret_signing_keys  the token engine's signing keys (handles into the vault) by kid
    secret_leases        leases keyed by locator (a handle's first 8 bytes: issue second and
                         random bits, so rows are appended in issue order), with the handle and
                         the proof (the lease id itself is never stored); one index,
                         (state, account, expires_at), serves the quota (per
                         account: the member a chain starts from), an identity's leases and
                         the sweep
    secret_lease_chains  the SHA-256 of each credential chain that justified leases (not its
                         bytes: review 56j, chains 1); deleted with its members once no lease
                         refers to it (`prune_chains`)
    secret_lease_members each chain's credential hashes and identities (revocation lookups);
                         a pruned chain's standing row (`ROOT_MEMBER`) is kept once, under
                         the empty chain hash
    secret_lease_accounts (identity, account) for every chain: the accounts an identity's
                         leases are filed under; deleted once no lease is filed under it
                         (`prune_accounts`)
    secret_audit         (troth.secrets.audit) the append-only audit log

Docs: docs/secrets.md ("Storage"), docs/formats.md ("Leases", "Sealed secrets").
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from troth import limits
from troth.errors import ConflictError, StorageError
from troth.identity import Identifier
from troth.secrets.lease import (
    OPEN_STATES,
    EndReason,
    Lease,
    LeaseHandle,
    LeaseState,
    locator_floor,
)
from troth.secrets.members import ROOT_MEMBER
from troth.secrets.store_schema import CONFIG_AND_LIVE, INSERT_LEASE, create_tables
from troth.secrets.sweep import Due
from troth.storage import SqliteDatabase

__all__ = [
    "KEPT_STANDING",
    "MAX_STORED_CHAINS_CACHE",
    "SecretRecord",
    "SigningKeyRecord",
    "SqliteSecretStore",
    "sql_blob",
]


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """An upstream secret as stored: the value only sealed."""

    name: str
    engine: str
    config: str  # JSON, checked by the engine when stored
    sealed: bytes
    updated_at: int


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    kid: str
    handle: str
    created_at: int
    retired_at: int | None


_SELECT_LEASES: Final = (
    "SELECT handle, identity, secret, engine, scope, chain_hash, authority, issued_at, "
    "expires_at, ttl, max_ttl, cap_at, state, state_at, end_reason, engine_ref, proof "
    "FROM secret_leases "
)


_OF_IDENTITY: Final = (
    "account IN (SELECT account FROM secret_lease_accounts WHERE identity = ?) AND identity = ? "
)
"""An identity's leases: under each account it holds leases in (its index ranges), its own."""


MAX_STORED_CHAINS_CACHE: Final = 4096
"""Chains a store remembers as stored (it then skips writing them again); emptied when full:
a cache, not a record (a chain forgotten is written again with INSERT OR IGNORE). Delegates are
minted for free, so remembering every chain grew without bound (review 30b, store 4). Emptied
too when any store on the database pruned chains or account rows (`prune_chains`,
`prune_accounts`: the epoch they bump)."""

_CHAINS_EPOCH: Final = "lease_chains_pruned"
"""The `secret_meta` row counting the `prune_chains` and `prune_accounts` calls that deleted
chains or (identity, account) rows: a store whose cache of stored chains was filled under
another count empties it (another broker on the database, the daemon or a CLI command's, may
have pruned a chain it remembers, or the row filed with it: review 47d, accounts 1)."""

KEPT_STANDING: Final = b""
"""The chain hash under which a pruned chain's standing row (`ROOT_MEMBER` || authority ||
actor) is kept: one row per (authority, actor), whatever chains it came from."""


sql_blob: Final = bytearray
"""`data` to bind as a BLOB parameter on a hot path, `sql_blob(data)`: CPython's sqlite3 runs
its adapter lookup for every `bytes` parameter (~0.6 us each) and binds a bytearray directly.
The type itself, not a function calling it: no Python frame per parameter (ten an issue:
review 53a)."""


def _lease(row: Any) -> Lease:
    return Lease(
        handle=LeaseHandle(bytes(row[0])),
        identity=Identifier(bytes(row[1])),
        secret=row[2],
        engine=row[3],
        scope=tuple(row[4].split()) if row[4] else (),
        chain_hash=bytes(row[5]),
        authority=Identifier(bytes(row[6])),
        issued_at=row[7],
        expires_at=row[8],
        ttl=row[9],
        max_ttl=row[10],
        cap_at=row[11],
        state=LeaseState(row[12]),
        state_at=row[13],
        end_reason=None if row[14] is None else EndReason(row[14]),
        engine_ref=row[15],
    )


class _Locked(AbstractContextManager[None]):
    """Hold `lock` around `inner` (a transaction)."""

    __slots__ = ("_inner", "_lock")

    def __init__(self, lock: threading.RLock, inner: AbstractContextManager[None]) -> None:
        self._lock = lock
        self._inner = inner

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._inner.__enter__()
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool | None:
        try:
            return self._inner.__exit__(kind, exc, tb)
        finally:
            self._lock.release()


_CURRENT_KID: Final = (
    "SELECT kid FROM secret_signing_keys WHERE retired_at IS NULL "
    "ORDER BY created_at DESC, kid DESC LIMIT 1"
)


def _states(states: Iterable[LeaseState]) -> str:
    """A JSON array of state numbers, for `state IN (SELECT value FROM json_each(?))`."""
    return json.dumps(sorted(int(s) for s in states))


class SqliteSecretStore:
    """The broker's repository over the node's `SqliteDatabase`."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        # a chain remembered here is stored, unless the chains' epoch moved on since (bounded:
        # a cache; `insert_lease` reads the epoch in its transaction and empties it then)
        self._stored_chains: set[bytes] = set()
        self._chains_epoch = -1
        self._read_epoch = threading.local()  # the epoch the thread's last insert read
        self._write_lock = threading.RLock()
        conn = db.connection()
        with db.transaction():
            create_tables(conn, db)

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction of the node database. Writers of this process queue on a lock
        first: SQLite's busy handler would make them sleep and retry (1-100 ms at a time)."""
        self._read_epoch.kid = None  # what an earlier transaction read is not this one's
        return _Locked(self._write_lock, self.db.transaction())

    # -- upstream secrets ---------------------------------------------------------------------

    def put_secret(self, record: SecretRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO secret_store VALUES (?, ?, ?, ?, ?)",
            (record.name, record.engine, record.config, record.sealed, record.updated_at),
        )

    def get_secret(self, name: str) -> SecretRecord | None:
        row = self.db.fetch_one(
            "SELECT name, engine, config, sealed, updated_at FROM secret_store WHERE name = ?",
            (name,),
        )
        return None if row is None else SecretRecord(row[0], row[1], row[2], bytes(row[3]), row[4])

    def get_config(self, name: str) -> tuple[str, str] | None:
        """A secret's (engine, JSON config), without its sealed value (the issue path)."""
        row = self._one("SELECT engine, config FROM secret_store WHERE name = ?", (name,))
        return None if row is None else (row[0], row[1])

    def _one(self, sql: str, params: tuple[object, ...]) -> Any:
        """One row of a query, errors mapped to StorageError: inside a transaction (the issue
        path) on this thread's connection (its reusable cursor), which holds the write lock;
        outside one through `fetch_all`, which retries a busy database (`run_rows`: one frame
        and one look-up of the depth fewer an issue than `in_transaction` then `run`, 61m)."""
        rows = self.db.run_rows(sql, params)  # read to its end: no statement left open
        return rows[0] if rows else None

    def secrets(self) -> list[SecretRecord]:
        rows = self.db.fetch_all(
            "SELECT name, engine, config, sealed, updated_at FROM secret_store ORDER BY name"
        )
        return [SecretRecord(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def delete_secret(self, name: str) -> bool:
        return self.db.execute("DELETE FROM secret_store WHERE name = ?", (name,)).rowcount == 1

    # -- meta and signing keys ----------------------------------------------------------------

    def get_meta(self, name: str) -> bytes | None:
        row = self.db.fetch_one("SELECT value FROM secret_meta WHERE name = ?", (name,))
        return None if row is None else bytes(row[0])

    def put_meta(self, name: str, value: bytes) -> None:
        self.db.execute("INSERT INTO secret_meta VALUES (?, ?)", (name, value))

    def drop_meta(self, name: str) -> None:
        self.db.execute("DELETE FROM secret_meta WHERE name = ?", (name,))

    def add_signing_key(self, record: SigningKeyRecord) -> None:
        self.db.execute(
            "INSERT INTO secret_signing_keys VALUES (?, ?, ?, ?)",
            (record.kid, record.handle, record.created_at, record.retired_at),
        )

    def retire_signing_keys(self, now: int) -> None:
        self.db.execute(
            "UPDATE secret_signing_keys SET retired_at = ? WHERE retired_at IS NULL", (now,)
        )

    def withdraw_signing_keys(self, keep: str) -> list[SigningKeyRecord]:
        """Forget every token key but `keep` (a compromised rotation: none stays published);
        the records forgotten, whose vault keys the caller deletes once this commits."""
        gone = [k for k in self.signing_keys() if k.kid != keep]
        self.db.execute("DELETE FROM secret_signing_keys WHERE kid != ?", (keep,))
        return gone

    def forget_signing_keys(self, *, retired_before: int) -> list[SigningKeyRecord]:
        """Delete the token keys retired before `retired_before` (never the current one: its
        `retired_at` is NULL); the records deleted, whose vault keys the caller deletes once
        this commits."""
        gone = [
            k
            for k in self.signing_keys()
            if k.retired_at is not None and k.retired_at < retired_before
        ]
        self.db.execute(
            "DELETE FROM secret_signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?",
            (retired_before,),
        )
        return gone

    def signing_keys(self) -> list[SigningKeyRecord]:
        rows = self.db.fetch_all(
            "SELECT kid, handle, created_at, retired_at FROM secret_signing_keys "
            "ORDER BY created_at, kid"
        )
        return [SigningKeyRecord(r[0], r[1], r[2], r[3]) for r in rows]

    def current_signing_kid(self) -> str | None:
        """The kid of the newest unretired token key (the one `signing_keys` lists last)."""
        row = self.db.fetch_one(_CURRENT_KID)
        return None if row is None else str(row[0])

    def signing_kid_now(self) -> str | None:
        """`current_signing_kid` as the `config_and_live` of this thread's transaction read it
        (the issue path's one query), else read now: what a token minted in the transaction
        is signed with (review 48f, tokens 1)."""
        kid = getattr(self._read_epoch, "kid", None)
        return str(kid) if kid is not None else self.current_signing_kid()

    # -- leases -------------------------------------------------------------------------------

    def insert_lease(
        self,
        lease: Lease,
        account: Identifier,
        proof: bytes,
        members: Callable[[], Iterable[bytes]],
        request: tuple[bytes, int] | None = None,
    ) -> bool:
        """Write a lease filed under `account` (whose quota it spends), with the key and the
        attempt of the request that asked for it if any, and, unless already stored, its
        chain's hash (not its bytes, which nothing reads: review 56j, chains 1), the chain's
        `members()` and its (identity, account) pair; False (nothing
        written) if its locator is taken (the caller draws another lease id). Called in the
        transaction of the `config_and_live` it follows (the chains' epoch it read decides
        whether the chains remembered as stored still are)."""
        try:
            self._insert_lease(lease, account, proof, request)
        except ConflictError as exc:
            if "secret_leases.locator" in str(exc):  # SQLite names the key that clashed
                return False
            raise
        epoch = self._read_epoch.value = self._epoch()  # config_and_live's, else read now
        if epoch != self._chains_epoch:  # chains were pruned since (any store's prune_chains)
            self._stored_chains.clear()
            self._chains_epoch = epoch
        elif lease.chain_hash in self._stored_chains:
            return True
        self.db.execute(  # a chain names one actor and one account: once per chain
            "INSERT OR IGNORE INTO secret_lease_accounts VALUES (?, ?)",
            (lease.identity.digest, account.digest),
        )
        if self.db.execute(
            "INSERT OR IGNORE INTO secret_lease_chains VALUES (?)", (lease.chain_hash,)
        ).rowcount:
            for member in members():
                self.db.execute(
                    "INSERT OR IGNORE INTO secret_lease_members VALUES (?, ?)",
                    (member, lease.chain_hash),
                )
        return True

    def _insert_lease(
        self, lease: Lease, account: Identifier, proof: bytes, request: tuple[bytes, int] | None
    ) -> None:
        if lease.end_reason is not None:  # a lease is written open; its end is an UPDATE
            raise StorageError(f"lease {lease.handle} is written with an end reason")
        params: tuple[object, ...] = (
            lease.handle.locator,
            sql_blob(lease.handle.digest),
            sql_blob(lease.identity.digest),
            sql_blob(account.digest),
            lease.secret,
            lease.engine,
            " ".join(lease.scope),
            sql_blob(lease.chain_hash),
            sql_blob(lease.authority.digest),
            lease.issued_at,
            lease.expires_at,
            lease.ttl,
            lease.max_ttl,
            lease.cap_at,
            int(lease.state),
            lease.state_at,
            sql_blob(proof),
        )
        if lease.engine_ref is not None:
            params += (lease.engine_ref,)
        if request is not None:
            params += request
        self.db.run(INSERT_LEASE[lease.engine_ref is not None, request is not None], params)

    def last_of_request(self, key: bytes) -> tuple[Lease, int] | None:
        """The lease of the highest attempt of the request with `key` (ended ones too, until
        pruned), with that attempt: one look-up in the `secret_leases_request_attempt` index,
        however many attempts the request made (review 45k, secrets 2)."""
        row = self._one(
            _SELECT_LEASES.replace(" FROM ", ", request_attempt FROM ", 1)
            + "WHERE request = ? ORDER BY request_attempt DESC LIMIT 1",
            (key,),
        )
        return None if row is None else (_lease(row), int(row[17]))

    def chain_committed(self, chain_hash: bytes) -> None:
        """Note that a transaction that stored `chain_hash` committed (later leases of the same
        chain then skip re-inserting it)."""
        if getattr(self._read_epoch, "value", None) != self._chains_epoch:
            return  # chains were pruned after it was stored: it may be gone
        if len(self._stored_chains) >= MAX_STORED_CHAINS_CACHE:
            self._stored_chains.clear()
        self._stored_chains.add(chain_hash)

    def _epoch(self) -> int:
        """How many prunes deleted chains or their rows (`_CHAINS_EPOCH`): as `config_and_live`
        read it in this thread's transaction (the issue path's one query; taken once), else
        read now, in the caller's transaction."""
        pending = getattr(self._read_epoch, "pending", None)
        if pending is not None:
            self._read_epoch.pending = None
            return int(pending)
        row = self._one("SELECT value FROM secret_meta WHERE name = ?", (_CHAINS_EPOCH,))
        return 0 if row is None else int(row[0])

    def get_lease(self, handle: LeaseHandle, proof: bytes | None = None) -> Lease | None:
        """The lease named `handle` (one row by its locator); with `proof`, only if the stored
        proof equals it (compared in constant time)."""
        row = self.db.fetch_one(
            _SELECT_LEASES + "WHERE locator = ? AND handle = ?",
            (handle.locator, sql_blob(handle.digest)),
        )
        if row is None or (proof is not None and not hmac.compare_digest(bytes(row[16]), proof)):
            return None
        return _lease(row)

    def lease_state(self, handle: LeaseHandle) -> tuple[LeaseState, int] | None:
        """(state, expires_at) of a lease: the one lookup `validate_token` needs."""
        row = self.db.fetch_one(
            "SELECT state, expires_at FROM secret_leases WHERE locator = ? AND handle = ?",
            (handle.locator, sql_blob(handle.digest)),
        )
        return None if row is None else (LeaseState(row[0]), row[1])

    def config_and_live(
        self, name: str, account: Identifier, now: int, *, up_to: int
    ) -> tuple[tuple[str, str] | None, int]:
        """Secret `name`'s (engine, JSON config) as `get_config` reads it, and the leases filed
        under `account` that count against its quota (pending, active and unexpired, or being
        revoked: a REVOKING lease's upstream object, a database role, still exists, and one
        whose revocation keeps failing must not free its place: review 44b, postgres 1; nor
        does an expired ACTIVE lease with an upstream object, `engine_ref`, until the sweep
        revokes it: review 48f, quota 1), counted up to `up_to` (the quota: the work stays
        bounded): the issue path's two reads, one query; with them the chains' epoch, for the
        `insert_lease` that follows in the same transaction, and the current token key's kid,
        for a token minted in it (`signing_kid_now`)."""
        row = self._one(
            CONFIG_AND_LIVE,
            (
                sql_blob(account.digest),
                now,
                up_to,
                name,
                _CHAINS_EPOCH,
            ),
        )
        self._read_epoch.kid, row = row[0], row[1:]
        self._read_epoch.pending = int(row[1])
        return (None if row[0] is None else (row[0], row[2])), int(row[3])

    def leases_of(self, identity: Identifier, *, include_ended: bool, limit: int) -> list[Lease]:
        """An identity's open leases (bounded: the quota per account, and REVOKING ones) and,
        `include_ended`, its ended ones among the `limits.MAX_LEASE_LIST_ENDED_SCAN`
        latest-ending ended leases of each of its accounts; newest first, at most `limit`."""
        found = self.leases_in(OPEN_STATES, identity=identity, limit=limit, newest_first=True)
        if not include_ended:
            return found
        for (account,) in self.db.fetch_all(
            "SELECT account FROM secret_lease_accounts WHERE identity = ?", (identity.digest,)
        ):
            found += self._leases(  # the index range (REVOKED, account), from its end
                "WHERE locator IN (SELECT locator FROM secret_leases "
                "WHERE state = ? AND account = ? ORDER BY expires_at DESC LIMIT ?) "
                "AND identity = ?",
                (
                    int(LeaseState.REVOKED),
                    account,
                    limits.MAX_LEASE_LIST_ENDED_SCAN,
                    identity.digest,
                ),
            )
        found.sort(key=lambda lease: (-lease.issued_at, lease.handle.digest))
        return found[:limit]

    def leases_in(
        self,
        states: Iterable[LeaseState],
        *,
        expires_before: int | None = None,
        state_before: int | None = None,
        identity: Identifier | None = None,
        limit: int | None = 10_000,
        newest_first: bool = False,
    ) -> list[Lease]:
        """Leases in `states`, optionally expired by a time, stale since a time, or of one
        identity, soonest expiry first (or newest issued first), at most `limit` (None: every
        one, for a revocation that must be complete). Read through the (state,
        account, expires_at) index: with `identity`, the entries of each state under each of
        its accounts (the identity's rows kept); without, every entry of each state (the sweep
        reads all ACTIVE leases, which are bounded by the quota per account)."""
        where = ["state IN (SELECT value FROM json_each(?))"]
        params: list[object] = [_states(states)]
        if identity is not None:
            where.append(_OF_IDENTITY)
            params += (identity.digest, identity.digest)
        for clause, value in (
            ("expires_at <= ?", expires_before),
            ("state_at <= ?", state_before),
        ):
            if value is not None:  # only the conditions given: each one a plain term
                where.append(clause)
                params.append(value)
        order = " ORDER BY issued_at DESC, handle" if newest_first else " ORDER BY expires_at"
        return self._leases(
            "WHERE " + " AND ".join(where) + order + " LIMIT ?",
            (*params, -1 if limit is None else limit),  # SQLite: a negative LIMIT, no limit
        )

    def open_leases_of_secret(self, secret: str) -> list[Lease]:
        """Every open lease of secret `secret`, with no limit: moving or removing a secret must
        revoke them all (review 30b, store 1: the first 10,000 open leases of the broker, by
        expiry, hid the rest). Read through the state index: every open lease's entry (they
        are bounded by the quota per account)."""
        return self._leases(
            "WHERE state IN (SELECT value FROM json_each(?)) AND secret = ?",
            (_states(OPEN_STATES), secret),
        )

    def members_of_open(self, authority: Identifier) -> list[bytes]:
        """The distinct chain members of leases that are not yet revoked, under `authority`:
        the open leases through the state index (bounded by the quota per account), then their
        chains' members through `secret_lease_members_chain`. Never a scan of every lease or
        chain ever stored, which grow without bound (review 30b, store 3)."""
        rows = self.db.fetch_all(
            "SELECT DISTINCT member FROM secret_lease_members WHERE chain_hash IN "
            "(SELECT chain_hash FROM secret_leases WHERE state IN "
            "(SELECT value FROM json_each(?)) AND authority = ?)",
            (_states(OPEN_STATES), authority.digest),
        )
        return [bytes(r[0]) for r in rows]

    def live_agents(self, states: Iterable[LeaseState]) -> set[bytes]:
        """The identities (digests) holding a lease in `states`, through the state index: the
        live leases are bounded by the quota per account."""
        rows = self.db.fetch_all(
            "SELECT DISTINCT identity FROM secret_leases WHERE state IN "
            "(SELECT value FROM json_each(?))",
            (_states(states),),
        )
        return {bytes(r[0]) for r in rows}

    def has_member(self, member: bytes) -> bool:
        """Whether a chain stored for a lease, ended ones too, has `member` (one lookup of the
        members' primary key: review 32a, secrets 1, a `ROOT_MEMBER` row naming the chain's
        root and its actor; kept under `KEPT_STANDING` once its chains are pruned)."""
        row = self.db.fetch_one(
            "SELECT 1 FROM secret_lease_members WHERE member = ? LIMIT 1", (member,)
        )
        return row is not None

    def leases_with_member(
        self, member: bytes, states: Iterable[LeaseState], authority: Identifier
    ) -> list[Lease]:
        """The leases in `states` justified under `authority` whose chain has `member`: a
        feed ends its own authority's leases only (review 31b, secrets 1: an identity revoked
        by one authority lost its leases another authority's credentials justified)."""
        return self._leases(
            "WHERE state IN (SELECT value FROM json_each(?)) AND authority = ? AND "
            "chain_hash IN (SELECT chain_hash FROM secret_lease_members WHERE member = ?)",
            (_states(states), authority.digest, member),
        )

    def _leases(self, condition: str, params: tuple[object, ...]) -> list[Lease]:
        """The leases a condition (fixed text: values are always parameters) selects."""
        return [_lease(row) for row in self.db.fetch_all(_SELECT_LEASES + condition, params)]

    def set_state(
        self,
        handle: LeaseHandle,
        *,
        was: Iterable[LeaseState],
        to: LeaseState,
        now: int,
        end_reason: EndReason | None = None,
    ) -> bool:
        """Move a lease from one of `was` to `to` (compare-and-set); False if it was not."""
        cursor = self.db.execute(
            "UPDATE secret_leases SET state = ?, state_at = ?, "
            "end_reason = COALESCE(end_reason, ?) "
            "WHERE locator = ? AND handle = ? AND state IN (SELECT value FROM json_each(?))",
            (
                int(to),
                now,
                None if end_reason is None else int(end_reason),
                handle.locator,
                handle.digest,
                _states(was),
            ),
        )
        return cursor.rowcount == 1

    def extend(self, handle: LeaseHandle, expires_at: int, now: int) -> bool:
        cursor = self.db.execute(
            "UPDATE secret_leases SET expires_at = ?, state_at = ? "
            "WHERE locator = ? AND handle = ? AND state = ?",
            (expires_at, now, handle.locator, handle.digest, int(LeaseState.ACTIVE)),
        )
        return cursor.rowcount == 1

    def note_attempt(self, handle: LeaseHandle, retry_at: Callable[[int], int]) -> int:
        """Count a failed upstream revocation of a lease and store when it is retried next,
        `retry_at(attempts)`; returns the attempts (0: no such lease)."""
        key = (handle.locator, sql_blob(handle.digest))
        row = self._one("SELECT attempts FROM secret_leases WHERE locator = ? AND handle = ?", key)
        if row is None:
            return 0
        attempts = int(row[0]) + 1
        self.db.execute(
            "UPDATE secret_leases SET attempts = ?, retry_at = ? WHERE locator = ? AND handle = ?",
            (attempts, retry_at(attempts), *key),
        )
        return attempts

    def retry_due(self, handle: LeaseHandle, now: int) -> bool:
        """Whether a lease's upstream revocation may be tried at `now` (never tried, or its
        retry time came; an unknown lease too: the caller finds it gone)."""
        row = self._one(
            "SELECT retry_at FROM secret_leases WHERE locator = ? AND handle = ?",
            (handle.locator, sql_blob(handle.digest)),
        )
        return row is None or int(row[0]) <= now

    def due_revocations(self, now: int, *, limit: int) -> list[Due]:
        """REVOKING leases whose revocation may be tried at `now`, each with its account and
        failed attempts: at most `limit` never tried (the oldest first) and at most `limit`
        retries (the longest due first), each kind its own limit (a burst of first attempts
        never hides the retries: review 46d, secrets 2). Read through the state index: open
        leases are bounded by the quotas."""
        rows = []
        for tried in ("attempts = 0", "attempts > 0"):  # fixed text
            rows += self.db.fetch_all(
                _SELECT_LEASES.replace(" FROM ", ", account, attempts FROM ", 1)
                + f"WHERE state = ? AND retry_at <= ? AND {tried} "
                "ORDER BY retry_at, locator LIMIT ?",
                (int(LeaseState.REVOKING), now, limit),
            )
        return [Due(_lease(row), bytes(row[17]), int(row[18])) for row in rows]

    def prune_ended(self, before: int, *, limit: int) -> int:
        """Delete up to `limit` REVOKED leases that ended (`state_at`) before `before`; returns
        how many. Read through the rowid range of the leases issued before then (a lease ends
        after its issue), not the state's index: that range holds the old ended rows this
        deletes and the few old leases still open (REVOKING ones whose revocation keeps
        failing, expired ones the sweep has not ended), so a round reads about what it
        deletes. Their chains go with `prune_chains`."""
        return self.db.execute(
            "DELETE FROM secret_leases WHERE locator IN (SELECT locator FROM secret_leases "
            "WHERE locator < ? AND +state = ? AND state_at < ? ORDER BY locator LIMIT ?)",
            (locator_floor(before), int(LeaseState.REVOKED), before, limit),
        ).rowcount

    def prune_chains(self, after: bytes, *, limit: int) -> tuple[int, bytes]:
        """Delete the chains no lease refers to (review 46d, secrets 1: they were kept for
        good, a new one at each credential refresh) among the `limit` chains whose hashes
        follow `after` (the chains' key index, read in order), with their members, but keep
        each standing row (`ROOT_MEMBER` || authority || actor: the authority has standing
        over that agent, review 31b, secrets 3) once under `KEPT_STANDING`. Bumps the chains'
        epoch when it deleted any, in the caller's transaction (stores remembering a chain as
        stored write it again). Returns how many chains it deleted and where the next call
        goes on (b"": from the start again)."""
        rows = self.db.fetch_all(
            "SELECT chain_hash FROM secret_lease_chains WHERE chain_hash > ? "
            "ORDER BY chain_hash LIMIT ?",
            (after, limit),
        )
        # the chains any lease (open or ended) refers to: one scan of the leases, no index
        # (an index on chain_hash cost every lease an entry; `LeaseBook.prune` runs this only
        # while a pass goes on after leases were pruned)
        used = (
            {
                bytes(row[0])
                for row in self.db.fetch_all("SELECT DISTINCT chain_hash FROM secret_leases")
            }
            if rows
            else set()
        )
        unused = [bytes(row[0]) for row in rows if bytes(row[0]) not in used]
        for chain_hash in unused:
            self.db.execute(
                "INSERT OR IGNORE INTO secret_lease_members SELECT member, ? "
                "FROM secret_lease_members WHERE chain_hash = ? AND substr(member, 1, 1) = ?",
                (KEPT_STANDING, chain_hash, ROOT_MEMBER),
            )
            self.db.execute("DELETE FROM secret_lease_members WHERE chain_hash = ?", (chain_hash,))
            self.db.execute("DELETE FROM secret_lease_chains WHERE chain_hash = ?", (chain_hash,))
        if unused:
            self._next_epoch()
        return len(unused), (bytes(rows[-1][0]) if len(rows) == limit else b"")

    def prune_accounts(
        self, after: tuple[bytes, bytes] | None, *, limit: int
    ) -> tuple[int, tuple[bytes, bytes] | None]:
        """Delete the (identity, account) rows no lease (open or ended) is filed under (review
        47d, accounts 1: they were kept for good, one per pair ever seen, and each query of an
        identity's leases reads one index range per row of it) among the `limit` rows whose
        keys follow `after` (None: from the first), read in key order, against the pairs of
        every lease read in one scan of the leases, no index (as `prune_chains`: an index
        would cost every lease an entry; `LeaseBook.prune` runs this only while a pass goes on
        after leases were pruned, in the rounds that do not scan for the chains). A row of a
        live or retained lease stays. Bumps the chains' epoch when it deleted any, in the
        caller's transaction: a store remembering a chain as stored skips filing its row
        (`insert_lease`), so it must forget the chains it remembers and file the row again at
        that chain's next lease. Returns how many rows it deleted and where the next call goes
        on (None: the pass is through)."""
        start = after or (b"", b"")
        rows = self.db.fetch_all(
            "SELECT identity, account FROM secret_lease_accounts "
            "WHERE (identity, account) > (?, ?) ORDER BY identity, account LIMIT ?",
            (*start, limit),
        )
        used = (
            {
                (bytes(row[0]), bytes(row[1]))
                for row in self.db.fetch_all("SELECT DISTINCT identity, account FROM secret_leases")
            }
            if rows
            else set()
        )
        pairs = [(bytes(row[0]), bytes(row[1])) for row in rows]
        unused = [pair for pair in pairs if pair not in used]
        for identity, account in unused:
            self.db.execute(
                "DELETE FROM secret_lease_accounts WHERE identity = ? AND account = ?",
                (identity, account),
            )
        if unused:
            self._next_epoch()
        return len(unused), (pairs[-1] if len(pairs) == limit else None)

    def _next_epoch(self) -> None:
        """Move the chains' epoch on (`_CHAINS_EPOCH`): a chain, or the row filed with it, was
        deleted; every store empties its cache of chains stored at its next lease."""
        self.db.execute(
            "INSERT INTO secret_meta VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (_CHAINS_EPOCH,),
        )

    def stuck_revocations(self, *, limit: int) -> list[tuple[Lease, int, int]]:
        """REVOKING leases whose upstream revocation failed at least once, with the attempts
        and when the next one is due; the most attempted first, at most `limit`."""
        rows = self.db.fetch_all(
            _SELECT_LEASES.replace(" FROM ", ", attempts, retry_at FROM ", 1)
            + "WHERE state = ? AND attempts > 0 ORDER BY attempts DESC, locator LIMIT ?",
            (int(LeaseState.REVOKING), limit),
        )
        return [(_lease(row), int(row[17]), int(row[18])) for row in rows]

    def engine_refs(self, engine: str, states: Iterable[LeaseState]) -> set[str]:
        rows = self.db.fetch_all(
            "SELECT engine_ref FROM secret_leases WHERE engine = ? AND engine_ref IS NOT NULL "
            "AND state IN (SELECT value FROM json_each(?))",
            (engine, _states(states)),
        )
        return {r[0] for r in rows}
