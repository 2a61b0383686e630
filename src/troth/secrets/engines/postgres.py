"""The `postgres` engine: one dynamic PostgreSQL role per lease (psycopg 3, extra `postgres`).

Issue: `CREATE ROLE <prefix><handle hex> LOGIN PASSWORD <SCRAM verifier> VALID UNTIL <expiry>
CONNECTION LIMIT <connection_limit>` (default `limits.POSTGRES_LEASE_CONNECTIONS`: one holder takes
no more of the server's sessions; review 61e, postgres 1) and, in its transaction, `CREATE SCHEMA
<role> AUTHORIZATION <role>` in dbname, where what the lease creates goes (`_own_schema`; review
70n, schemas 2), then the role is GRANTed a copy of each privilege the templates of its scopes
hold (postgres_grants.py): it is a member of no role, since on PostgreSQL 15 and older a member
may always SET ROLE to a role and make it own what it wrote (`ALTER ... OWNER TO`), which would
outlive the lease with the template's rights. A template whose rights are not all grantable ACL
entries (an owner, a role attribute, ...) is refused before the role exists, and so is one
holding a right that would let a lease plant code or objects in other roles' sessions (TRIGGER,
REFERENCES, CREATE on a database or on a schema no lease role owns, ALTER SYSTEM: review 70c,
leases 1-3 and 5; review 70n, schemas 1; `grants.refuse_planting`). The password is random
(256 bits) and only its SCRAM-SHA-256 verifier, computed by libpq on this side, reaches the
server (so it never appears in a server log). Renew: the role's privileges set to those the
templates its scopes map to hold now (REVOKE the others, ending its sessions if one was taken,
GRANT the missing), then `ALTER ROLE ... VALID UNTIL ... CONNECTION LIMIT`.

Revoke, in this order (an expired VALID UNTIL alone keeps open sessions with every privilege,
docs/secrets.md): `pg_terminate_backend(pid, wait)` for each of its sessions (not awaited
before NOLOGIN: one may take no interrupt for long, review 71b, pglease 4), `ROLLBACK
PREPARED` of each transaction it prepared (they outlive its sessions: review 69r), `ALTER ROLE
... NOLOGIN` (no new session; its sessions first: one of them may hold the role's row, review
49e, revocations 1), `pg_terminate_backend` again for any that logged in meanwhile (it fails
unless every one is gone, so the broker retries),
`REVOKE` of each role it is a member of (a role made by an older release), of each membership
in it (ending the sessions of every role that may act as it: `postgres_locks.revoke_members`)
and of each privilege it holds, its objects dropped (postgres_drops.py) and its large objects
unlinked a batch to a transaction (review 71b, pglease 1 and 2: `DROP OWNED` locks all it
drops at once, and 20000 large objects or 8000 types filled the server's lock table), `DROP
OWNED BY` in dbname, each configured database and any other where
the role owns or holds something (pg_shdepend: a large object needs no privilege to create, in
any database PUBLIC may connect to), so what the lease's role created dies with it (handed to
the admin, a SECURITY DEFINER function it wrote would run with the admin's rights; with the
objects of the other roles being revoked when theirs depend on it, and with CASCADE when a
live role's object still does, `postgres_drops.drop_owned`), then `DROP ROLE`. A role
already gone, before or during these steps (another broker on the node's database revoked it
meanwhile), is revoked.

Identifiers always go through `sql.Identifier`, values through `sql.Literal` or parameters;
the admin's sessions search `pg_catalog` only (`_session_options`), so no function or operator
a lease defines can stand in for one the admin calls.
The admin password (the upstream secret) is passed to libpq as a parameter, never in a
connection string, and proved by SCRAM, never sent (`_scram_only`: review 64r, postgres 2);
errors carry only the server's primary message or the error class.
"""

from __future__ import annotations

import datetime
import re
import secrets
import selectors
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from troth import limits
from troth.crypto import sha256
from troth.errors import ConfigError, SecretError, SecretFailure
from troth.secrets.engine import Grant, SecretSpec, config_error
from troth.secrets.engines import outages
from troth.secrets.engines import postgres_drops as drops
from troth.secrets.engines import postgres_grants as grants
from troth.secrets.engines import postgres_locks as locks
from troth.secrets.engines import postgres_waits as waits
from troth.secrets.engines.postgres_grants import Privilege
from troth.secrets.lease import LeaseCredential, LeaseHandle, SecretValue

__all__ = ["PostgresEngine"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")  # an ordinary identifier, <= 63 bytes
_HOST = re.compile(r"[A-Za-z0-9.:_/-]{1,255}")
_PASSWORD_BYTES: Final = 32
_ANY_LEASE: Final = "^tl_[0-9a-f]{8}_[0-9a-f]{32}$"  # a Broker's: tl_<broker id>_<handle hex>
_SETTINGS = frozenset(
    {
        "host",
        "port",
        "dbname",
        "user",
        "templates",
        "databases",
        "connect_timeout",
        "sslmode",
        "terminate_wait_ms",
        "connection_limit",
    }
)
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
OWN_ROW_LOCK_MS: Final = 200
"""Milliseconds a revocation's statement on a lease's own role (`ALTER ROLE ... NOLOGIN`) waits
for its pg_authid row, which the lease's own session can hold (review 49e, revocations 1): it
ends that session and tries again."""
RENEW_ROW_LOCK_MS: Final = 1
"""Milliseconds a renewal's `ALTER ROLE ... VALID UNTIL` waits for its role's pg_authid row (the
least `lock_timeout` there is; 0 would wait for ever): a lease's session holding it gets its
renewal refused at once, not `OWN_ROW_LOCK_MS` of the broker's thread at each renewal its agent
asks for (review 50c, renewals 1). The agent renews again once its transaction ended."""
_REQUIRE_AUTH_LIBPQ: Final = 160000  # the first libpq with `require_auth` (16.0)
_BINDABLE: Final = frozenset({"require", "verify-ca"})  # TLS always, the server's name unproved
NOLOGIN_ROUNDS: Final = 3
"""Rounds of ending a role's sessions and making it NOLOGIN a revocation tries (`_shut_out`)."""


def _engine_error(what: str, exc: Exception) -> SecretError:
    """An ENGINE_FAILED error naming the step and the server's primary message (no values)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    sqlstate = getattr(exc, "sqlstate", None)
    detail = f"postgres {what}: {primary or type(exc).__name__}"
    return SecretError(SecretFailure.ENGINE_FAILED, detail + (f" [{sqlstate}]" if sqlstate else ""))


def _ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise config_error(f"{what} must be a plain identifier ([A-Za-z_][A-Za-z0-9_$]*)")
    return value


class PostgresEngine:
    """Dynamic roles; settings: host, port, dbname, user (the admin, with CREATEROLE, the
    right to signal backends and to grant what the templates hold), templates {scope: role},
    databases (where privileges are copied and DROP OWNED runs, with dbname; default
    [dbname]), connect_timeout, sslmode, terminate_wait_ms, connection_limit (sessions a lease
    holds at once; default limits.POSTGRES_LEASE_CONNECTIONS)."""

    kind = "postgres"
    local = False

    def __init__(self, role_prefix: str) -> None:
        if not _IDENT.fullmatch(role_prefix) or len(role_prefix) > 24:
            raise ConfigError("a role prefix is a short plain identifier")
        self.role_prefix = role_prefix
        self.lease_roles = f"{grants.exactly(role_prefix)[:-1]}[0-9a-f]{{32}}$|{_ANY_LEASE}"
        """The names of lease roles, this engine's and any troth broker's: what they own and
        what a policy on their tables says is no template's (review 56b, postgres 1, 2, 4)."""
        self._connections: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self.outages = outages.Outages()
        """The servers that did not answer a connect (troth.secrets.engines.outages)."""

    def check_settings(
        self, settings: Mapping[str, Any], scopes: tuple[str, ...]
    ) -> dict[str, Any]:
        unknown = set(settings) - _SETTINGS
        if unknown:
            raise config_error(f"unknown postgres settings: {', '.join(sorted(unknown))}")
        host, port = settings.get("host", "127.0.0.1"), settings.get("port", 5432)
        if not isinstance(host, str) or not _HOST.fullmatch(host):
            raise config_error("host is a host name, an address or a socket directory")
        if type(port) is not int or not 0 < port < 65536:
            raise config_error("port is 1-65535")
        templates = settings.get("templates")
        if not isinstance(templates, Mapping) or set(templates) != set(scopes) or not scopes:
            raise config_error("templates maps every scope of the secret to a template role")
        dbname = _ident(settings.get("dbname"), "dbname")
        databases = settings.get("databases", [dbname])
        if not isinstance(databases, list) or not databases:
            raise config_error("databases is a list of database names")
        timeout, wait = settings.get("connect_timeout", 10), settings.get("terminate_wait_ms", 5000)
        if type(timeout) is not int or not 1 <= timeout <= 60:
            raise config_error("connect_timeout is 1-60 seconds")
        if type(wait) is not int or not 100 <= wait <= 60_000:
            raise config_error("terminate_wait_ms is 100-60000")
        sslmode = settings.get("sslmode", "prefer")
        if type(sslmode) is not str or sslmode not in _SSLMODES:  # review 54b, decoders 4
            raise config_error(f"sslmode is one of {', '.join(sorted(_SSLMODES))}")
        checked = {
            "host": host,
            "port": port,
            "dbname": dbname,
            "user": _ident(settings.get("user"), "user"),
            "templates": {scope: _ident(role, "a template") for scope, role in templates.items()},
            "databases": [_ident(name, "a database") for name in databases],
            "connect_timeout": timeout,
            "sslmode": sslmode,
            "terminate_wait_ms": wait,
        }
        if "connection_limit" in settings:  # (stored only when named: older configs unchanged)
            sessions = settings["connection_limit"]
            most = limits.POSTGRES_MAX_LEASE_CONNECTIONS
            if type(sessions) is not int or not 1 <= sessions <= most:
                raise config_error(f"connection_limit is 1-{most} sessions")
            checked["connection_limit"] = sessions
        return checked

    def engine_ref(self, spec: SecretSpec, handle: LeaseHandle) -> str | None:
        return self.role_prefix + handle.digest.hex()

    def location(self, settings: Mapping[str, Any]) -> tuple[object, ...]:
        """The cluster that holds a lease's role, the admin that drops it (on PostgreSQL 16 a
        CREATEROLE admin drops only the roles it created), and the databases its privileges
        are copied to and DROP OWNED runs in."""
        return (settings["host"], settings["port"], settings["user"], tuple(_databases(settings)))

    # -- the engine interface -----------------------------------------------------------------

    def issue(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        from psycopg import sql

        settings, role = grant.spec.settings, self._role(grant)
        password = secrets.token_urlsafe(_PASSWORD_BYTES)
        # a template that cannot be copied is refused before the role exists
        plan = self._plan(settings, upstream, role, _templates(grant), fresh=True)
        with self._admin(settings, settings["dbname"], upstream, "create role") as conn:
            verifier = conn.pgconn.encrypt_password(
                password.encode(), role.encode(), b"scram-sha-256"
            )
            with conn.transaction():  # the role and its schema, or neither
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN PASSWORD {} VALID UNTIL {} CONNECTION LIMIT {}"
                    ).format(
                        sql.Identifier(role),
                        sql.Literal(verifier.decode()),
                        sql.Literal(_at(grant.expires_at)),
                        sql.Literal(_connection_limit(settings)),
                    )
                )
                _own_schema(conn, role)
        self._reconcile(settings, upstream, role, plan)
        return LeaseCredential(
            {
                "host": settings["host"],
                "port": settings["port"],
                "dbname": settings["dbname"],
                "user": role,
                "password": password,
                "valid_until": grant.expires_at,
            },
            password.encode(),
        )

    def renew(self, grant: Grant, upstream: SecretValue) -> LeaseCredential:
        from psycopg import sql

        role, settings = self._role(grant), grant.spec.settings
        # the privileges the configuration grants now: an operator who remapped a scope to a
        # narrower template (or narrowed the template) takes the rest away at the next renewal
        self._reconcile(
            settings, upstream, role, self._plan(settings, upstream, role, _templates(grant))
        )
        with self._admin(settings, settings["dbname"], upstream, "renew role") as conn:
            # its own session may hold its pg_authid row (review 49e, revocations 1): refused
            # at once, never a lock wait of the broker's thread at each renewal it asks for
            # (review 50c, renewals 1: `OWN_ROW_LOCK_MS`, 200 ms a renewal)
            _short_wait(
                conn,
                sql.SQL("ALTER ROLE {} VALID UNTIL {} CONNECTION LIMIT {}").format(
                    sql.Identifier(role),
                    sql.Literal(_at(grant.expires_at)),
                    sql.Literal(_connection_limit(settings)),  # as configured now
                ),
                RENEW_ROW_LOCK_MS,
            )
        return LeaseCredential({"user": role, "valid_until": grant.expires_at}, role.encode())

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        if ref is None:
            return
        try:
            self._revoke(spec, ref, upstream)
        except SecretError:
            # another broker on the node's database (its daemon, a CLI command) revoked the
            # same lease meanwhile and dropped the role under this one's steps: gone is what a
            # revocation promises (review 54f, postgres 3: it failed, an operator's removal of
            # the secret with it, and a failed attempt was counted)
            if not self._role_gone(spec.settings, ref, upstream):
                raise

    def _role_gone(self, settings: Mapping[str, Any], ref: str, upstream: SecretValue) -> bool:
        """Whether the role `ref` no longer exists (False when that cannot be read)."""
        try:
            with self._admin(settings, settings["dbname"], upstream, "find role") as conn:
                query = "SELECT 1 FROM pg_roles WHERE rolname = %s"
                return conn.execute(query, (ref,)).fetchone() is None
        except SecretError:
            return False

    def _revoke(self, spec: SecretSpec, ref: str, upstream: SecretValue) -> None:
        from psycopg import sql

        role, settings = sql.Identifier(ref), spec.settings
        with self._admin(settings, settings["dbname"], upstream, "find role") as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ref,)).fetchone() is None:
                return
        try:
            self._shut_out(settings, ref, upstream)
        except SecretError:
            self._strip(settings, ref, upstream)  # still LOGIN: nothing to log in to (71b)
            raise
        try:
            with self._admin(settings, settings["dbname"], upstream, "revoke role") as conn:
                _take_shared(conn, ref, settings["terminate_wait_ms"])
                # its sessions ended and no new one: it makes nothing more (a grant another
                # role makes it later fails DROP ROLE below, and the retry finds that database)
                elsewhere = drops.databases_of(conn, ref) - set(_databases(settings))
        except SecretError:
            # a member's session that did not end keeps its membership for the retry (75b
            # pglast 2), and the member's other sessions set their role to the lease with
            # every privilege it held, at every retry (review 75i, pglast2 1)
            self._strip(settings, ref, upstream, shared=False)
            raise
        listed = [(database, True) for database in _databases(settings)]
        for database, keep in listed + [(database, False) for database in sorted(elsewhere)]:
            with self._admin(settings, database, upstream, "drop owned", keep=keep) as conn:
                self._drop_in(conn, ref, settings, upstream)
        # another role's transaction recording a grant to it (any role may, for itself:
        # ALTER DEFAULT PRIVILEGES ... TO it) locks the role: DROP ROLE waited (review 69r)
        self._end_role_lockers(settings, ref, upstream)
        with self._admin(settings, settings["dbname"], upstream, "drop role") as conn:
            # one another session was ending ("is busy": left, review 74g pgwatch5 1) and did
            # not is prepared again: DROP ROLE allows it, left owned by no role, for good
            # (review 74n, pgwatch6 3); the retry rolls it back
            if conn.execute(locks.PREPARED_BY, (ref,)).fetchone() is not None:
                why = f"a prepared transaction of {ref} is being ended: retry"
                raise SecretError(SecretFailure.ENGINE_FAILED, why)
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))

    def _drop_in(
        self, conn: Any, role: str, settings: Mapping[str, Any], upstream: SecretValue
    ) -> None:
        """Take what `role` holds and made in the connection's database. Another role's session
        holding a lock on what the lease owns (a live lease reading the table it let PUBLIC
        read) would keep DROP OWNED failing for good (review 44b, postgres 1): those sessions
        end first, before the REVOKE, which waits on another lease's open GRANT to the role as
        DROP OWNED would (review 70z, updaters 1). Its privileges go next: if DROP OWNED fails
        (another role's object depends on one of the lease's), the role is left with none while
        it is retried. Its objects and large objects go a few to a transaction: DROP OWNED locks
        all it drops at once (review 71b, pglease 1 and 2), its routines first (one any role may
        call made large objects as the role while they were unlinked: review 71j, pglease 6).
        Then DROP OWNED: dropped, never REASSIGNed to the admin, as a SECURITY DEFINER function
        the lease wrote would then run with the admin's rights for every later caller. All of it
        watched (`postgres_waits`): a lease whose open transaction updated a row a statement
        changes, in a savepoint it released, is found only by the statement's wait (review 72q,
        savepoint 1; 71b pglease 5)."""
        import psycopg

        wait_ms, database = settings["terminate_wait_ms"], conn.info.dbname
        watcher = lambda: self._connect(psycopg, settings, database, upstream.reveal())  # noqa: E731
        with waits.watching(watcher, conn.info.backend_pid, self.lease_roles, wait_ms, role):
            locks.end_lock_holders(conn, role, self.lease_roles, wait_ms)
            grants.apply(conn, "REVOKE", role, grants.held(conn, role, shared=False))
            drops.drop_objects(conn, role)
            locks.unlink_large_objects(conn, role)
            drops.drop_owned(conn, role, self.role_prefix)

    def _strip(
        self, settings: Mapping[str, Any], role: str, upstream: SecretValue, *, shared: bool = True
    ) -> None:
        """Take `role`'s memberships, privileges and objects (in the shared catalogs and in each
        listed database) when it could not be made NOLOGIN: a session that takes no interrupt
        while it holds the role's row kept it logging in with every privilege until the retry
        (review 71b, pglease 4), and with its schema and all it made there, which it read and
        wrote again from a new session for as long as that statement ran (review 71j, pglease
        7); or whose members' sessions did not all end (not `shared`: that step failed; review
        75i, pglast2 1). As far as it goes: the revocation fails and is retried."""
        try:
            if shared:
                with self._admin(settings, settings["dbname"], upstream, "revoke role") as conn:
                    _take_shared(conn, role, settings["terminate_wait_ms"])
        except SecretError:
            pass
        for database in _databases(settings):
            try:
                with self._admin(settings, database, upstream, "drop owned") as conn:
                    self._drop_in(conn, role, settings, upstream)
            except SecretError:
                continue

    def _end_role_lockers(
        self, settings: Mapping[str, Any], role: str, upstream: SecretValue
    ) -> None:
        """End the sessions holding a lock on `role` itself and roll back the prepared
        transactions that do (in the database each was prepared in): the role names are
        public, and any role may record a grant to any other in a transaction it keeps open
        (`ALTER DEFAULT PRIVILEGES GRANT ... TO`), which locks that role until it ends, so a
        lease of any member kept every other lease's `DROP ROLE` failing at each retry (review
        69r, leases 5). One that locks it again before `DROP ROLE` fails it once more, retried.
        Only lease roles' (`lease_roles`): another role's (an application's) is left to end on
        its own, `DROP ROLE` failing meanwhile (review 69w, wave4b 1)."""
        with self._admin(settings, settings["dbname"], upstream, "end role lockers") as conn:
            holders = conn.execute(locks.ROLE_LOCKERS, (role, self.lease_roles)).fetchall()
            for pid, _gid, _database, started, vxid in holders:
                if pid is not None:
                    wait_ms = settings["terminate_wait_ms"]
                    locks.terminate(conn, pid, started, vxid, self.lease_roles, wait_ms)
        for pid, gid, database, _started, xid in holders:
            if pid is None:
                listed = database in _databases(settings)
                with self._admin(settings, database, upstream, "roll back", keep=listed) as conn:
                    locks.roll_back_prepared(conn, gid, self.lease_roles, xid)

    def _shut_out(self, settings: Mapping[str, Any], role: str, upstream: SecretValue) -> None:
        """End `role`'s sessions, roll back its prepared transactions, make it NOLOGIN, end any
        session that logged in meanwhile. Its sessions end first: one that keeps a transaction
        open after changing its own password (any role may) holds the role's pg_authid row,
        and `ALTER ROLE ... NOLOGIN` first waited the lock timeout and failed, at every retry,
        the session reading on after the revocation for as long as it kept that transaction
        (review 49e, revocations 1). Such a transaction prepared (`PREPARE TRANSACTION`, on a
        server with `max_prepared_transactions` > 0) outlives every session and held the row
        for good: the revocation failed at each retry before taking anything, the role logging
        in with every privilege until VALID UNTIL (review 69r, leases 1); it is rolled back, in
        the database it was prepared in. A session that logs in again and takes the row
        between the steps is ended at the next of `NOLOGIN_ROUNDS` rounds (the revocation
        fails, retried by the sweep, only if it wins every one)."""
        import psycopg
        from psycopg import sql

        dbname, wait_ms = settings["dbname"], settings["terminate_wait_ms"]
        nologin = sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role))
        for _ in range(NOLOGIN_ROUNDS):
            with self._admin(settings, dbname, upstream, "end sessions") as conn:
                # signalled, not awaited: one busy in code that takes no interrupt (libxml's
                # XPath: seconds) kept the role LOGIN, its holder back in at each retry
                # (review 71b, pglease 4); NOLOGIN waits for the row a dying one holds, and
                # the step after it waits for them
                _end_sessions(conn, role, wait_ms, strict=False)
                prepared = conn.execute(locks.PREPARED_BY, (role,)).fetchall()
            for database, gid, xid in prepared:
                listed = database in _databases(settings)
                with self._admin(settings, database, upstream, "roll back", keep=listed) as conn:
                    locks.roll_back_prepared(conn, gid, self.lease_roles, xid)
            with self._admin(settings, dbname, upstream, "revoke login") as conn:
                try:
                    _short_wait(conn, nologin)
                except psycopg.errors.LockNotAvailable:
                    continue
                _end_sessions(conn, role, wait_ms)
                return
        raise SecretError(
            SecretFailure.ENGINE_FAILED, f"a session of {role} kept its role locked: retry"
        )

    def upstream_refs(self, spec: SecretSpec, upstream: SecretValue) -> set[str]:
        settings = spec.settings
        with self._admin(settings, settings["dbname"], upstream, "list roles") as conn:
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (self.role_prefix,)
            ).fetchall()
        return {name for (name,) in rows}

    def close(self) -> None:
        with self._lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    def release(self) -> None:
        """Close the kept admin connections (opened again when next needed): a secret was
        stored anew or removed, and a session on a database it no longer names would stop its
        owner from dropping it (review 54f, postgres 2)."""
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _role(self, grant: Grant) -> str:
        role = grant.engine_ref
        if role is None or not role.startswith(self.role_prefix):
            raise SecretError(SecretFailure.ENGINE_FAILED, "the lease names no role of this broker")
        return role

    def _plan(
        self,
        settings: Mapping[str, Any],
        upstream: SecretValue,
        role: str,
        templates: list[str],
        *,
        fresh: bool = False,
    ) -> list[tuple[str, bool, set[Privilege], set[Privilege]]]:
        """For each database (the shared catalogs first): whether it is the shared catalogs,
        the privileges the templates hold there and those `role` holds — none when it is
        `fresh` (not created yet) — refused before any change when a template cannot be
        copied."""
        dbname = settings["dbname"]
        leases = self.lease_roles

        def connect(database: str) -> Any:  # kept only for a database the secret lists
            listed = database in _databases(settings)
            return self._admin(settings, database, upstream, "read templates", keep=listed)

        sources = grants.check_templates(connect, dbname, templates, leases=leases)
        with self._admin(settings, dbname, upstream, "read privileges") as conn:
            pair = _pair(conn, templates, sources, role, leases, shared=True, fresh=fresh)
            plan = [(dbname, True, *pair)]
        for database in _databases(settings):
            with self._admin(settings, database, upstream, "read privileges") as conn:
                pair = _pair(conn, templates, sources, role, leases, shared=False, fresh=fresh)
                plan.append((database, False, *pair))
        return plan

    def _reconcile(
        self,
        settings: Mapping[str, Any],
        upstream: SecretValue,
        role: str,
        plan: list[tuple[str, bool, set[Privilege], set[Privilege]]],
    ) -> None:
        """Give `role` exactly the privileges of `plan`: REVOKE what it holds beyond them (and
        any membership), end its sessions if that took anything away (an open large object,
        a cursor or a lock outlives a REVOKE), GRANT the missing, then read back."""
        from psycopg import sql

        taken = False
        with self._admin(settings, settings["dbname"], upstream, "revoke memberships") as conn:
            for group in sorted(_memberships(conn, role)):  # a role made by an older release
                conn.execute(
                    sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(role))
                )
                taken = True
        for database, _shared, wanted, have in plan:
            if have - wanted:
                with self._admin(settings, database, upstream, "revoke privileges") as conn:
                    grants.apply(conn, "REVOKE", role, have - wanted)
                taken = True
        if taken:
            with self._admin(settings, settings["dbname"], upstream, "end sessions") as conn:
                _end_sessions(conn, role, settings["terminate_wait_ms"])
        for database, shared, wanted, have in plan:
            with self._admin(settings, database, upstream, "grant privileges") as conn:
                if wanted - have:
                    grants.apply(conn, "GRANT", role, wanted - have)
                now = grants.held(conn, role, shared=shared, leases=self.lease_roles)
            if now != wanted:  # PostgreSQL only warns when the admin may not grant one
                wrong = sorted(now ^ wanted)[0]
                raise SecretError(
                    SecretFailure.ENGINE_FAILED,
                    f"postgres copy privileges: {role} {'lacks' if wrong in wanted else 'keeps'} "
                    f"{wrong.describe()} (the admin needs to own it or hold it WITH GRANT OPTION)",
                )

    @contextmanager
    def _admin(
        self,
        settings: Mapping[str, Any],
        dbname: str,
        upstream: SecretValue,
        what: str,
        *,
        keep: bool = True,
    ) -> Iterator[Any]:
        """A connection as the admin to `dbname` (kept open, one per database and admin
        password, used under a lock; closed after use unless `keep`: a database the secret does
        not list, whose admin session would stop its owner from dropping it); a broken one is
        dropped and reopened on the next call, and so is one the server ended while it was
        idle (`_still_open`)."""
        try:
            import psycopg
        except ImportError as exc:
            raise ConfigError(
                "the postgres engine needs the 'postgres' extra: pip install 'troth[postgres]'"
            ) from exc
        password = upstream.reveal()
        key = (
            settings["host"],
            settings["port"],
            dbname,
            settings["user"],
            settings["sslmode"],
            settings["terminate_wait_ms"],  # part of the statement timeout
            sha256(password),  # a changed admin password opens a new connection
        )
        server = (settings["host"], settings["port"])
        with self._lock:
            conn = self._connections.pop(key, None)
            try:
                if conn is not None and not _still_open(conn):
                    conn.close()  # ended by the server while idle (review 54f, postgres 1)
                if conn is None or conn.closed or conn.broken:
                    conn = None
                    # a server that did not answer is not tried again for a while (review
                    # 50c, outages 1: a connect timeout of the broker's thread per call)
                    self.outages.check(server, f"postgres {what}: {server[0]}:{server[1]}")
                    started = outages.monotonic()
                    try:
                        conn = self._connect(psycopg, settings, dbname, password)
                    except psycopg.Error:
                        self.outages.failed(server, started)
                        raise
                    self.outages.reached(server)
                    # the kept one to this database as this admin under another password (a
                    # rotated one: the admin has one) is never used again (review 54f,
                    # postgres 2: one session per rotation and database was left open for
                    # good); one with other settings may be another secret's, still in use
                    for other in [k for k in self._connections if k[:-1] == key[:-1]]:
                        self._connections.pop(other).close()
                yield conn
            except psycopg.Error as exc:
                raise _engine_error(what, exc) from None
            finally:
                if conn is not None and not conn.closed and not conn.broken:
                    if keep:
                        self._connections[key] = conn
                    else:
                        conn.close()

    @staticmethod
    def _connect(psycopg: Any, settings: Mapping[str, Any], dbname: str, password: bytes) -> Any:
        return psycopg.connect(
            **_scram_only(psycopg, settings),
            host=settings["host"],
            port=settings["port"],
            dbname=dbname,
            user=settings["user"],
            password=password.decode(),
            connect_timeout=settings["connect_timeout"],
            sslmode=settings["sslmode"],
            autocommit=True,
            options=_session_options(settings),
            keepalives=1,  # a server that stops answering is noticed (TCP)
            keepalives_idle=limits.POSTGRES_KEEPALIVE_SECONDS,
            keepalives_interval=limits.POSTGRES_KEEPALIVE_SECONDS,
            keepalives_count=3,
        )


def _scram_only(psycopg: Any, settings: Mapping[str, Any]) -> dict[str, str]:
    """The admin authenticates with SCRAM-SHA-256 alone (libpq 16 and later: `require_auth`)
    unless sslmode is `verify-full` (the server proved its name: it may ask for the password).
    libpq otherwise sends the password itself to a server that asks for it in clear, and
    with sslmode `prefer` (the default) or `disable` whoever answers at the host and port (a
    machine in the path, one squatting the address) may ask: the admin password, the
    upstream secret, went to it (review 64r, postgres 2). SCRAM proves the password without
    sending it; an older libpq cannot be told, so it is asked nothing (docs/secrets.md).
    A socket directory (`host` starting with / or @) is no exception: libpq ignores sslmode on
    a Unix-domain socket, and whoever listens at the socket's path (one made in a shared
    directory while the server was down) asked for the password in clear and got it, under
    `verify-full` too (review 64w, postgres 1).
    Under `require` or `verify-ca` over TCP the SCRAM exchange is also bound to the TLS
    channel (`channel_binding=require`): TLS is promised but the server's name is not proved,
    and whoever answers (a certificate of its own, or any the CA signed) relayed the admin's
    SCRAM exchange, which proves nothing about the channel, to the real server and held the
    admin's authenticated session (review 64a2, postgres 1)."""
    socket = str(settings["host"]).startswith(("/", "@"))
    verified = settings["sslmode"] == "verify-full" and not socket
    if verified or psycopg.pq.version() < _REQUIRE_AUTH_LIBPQ:
        return {}
    if not socket and settings["sslmode"] in _BINDABLE:
        return {"require_auth": "scram-sha-256", "channel_binding": "require"}
    return {"require_auth": "scram-sha-256"}


def _still_open(conn: Any) -> bool:
    """Whether an idle kept connection may be used: nothing to read on its socket. The server
    sends nothing to an idle session but when it ends it (a restart, a failover,
    `pg_terminate_backend`, `idle_session_timeout`: an error, then the socket's end), and a
    connection used as it was failed the next call, an agent's issue or its revocation, which
    left the lease REVOKING with its role able to log in until the sweep's retry (review 54f,
    postgres 1). One with anything to read is closed and opened anew (no round trip)."""
    import psycopg

    try:
        with selectors.DefaultSelector() as selector:
            selector.register(conn.fileno(), selectors.EVENT_READ)
            return not selector.select(0)
    except (OSError, ValueError, psycopg.Error):
        return False


def _at(when: int) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat()


def _connection_limit(settings: Mapping[str, Any]) -> int:
    """The sessions a lease's role may hold at once (review 61e, postgres 1)."""
    return int(settings.get("connection_limit", limits.POSTGRES_LEASE_CONNECTIONS))


def _templates(grant: Grant) -> list[str]:
    return [grant.spec.settings["templates"][scope] for scope in grant.scope]


def _databases(settings: Mapping[str, Any]) -> list[str]:
    """Where privileges are copied and DROP OWNED runs: dbname (the lease's own) and the rest."""
    return list(dict.fromkeys([settings["dbname"], *settings["databases"]]))


def _own_schema(conn: Any, role: str) -> None:
    """Make the lease's own schema in the connection's database (dbname), named after its role
    and owned by it, in the transaction that creates the role (review 70n, schemas 2): the
    default search path (`"$user", public`) puts what the lease creates unqualified there, and
    no other role searches it (a role's name is unique in the cluster, and the lease may not
    rename its schema: that takes CREATE on the database, never copied). CREATE on any other
    schema is refused (`grants.refuse_planting`). `DROP OWNED` drops it at the revocation. An
    admin that may not create in the database (no CREATE on it) makes none: the lease then
    creates nothing but temporary tables. One that is no superuser is a member of the role
    for the statement only (`CREATE SCHEMA ... AUTHORIZATION` asks it of PostgreSQL 15)."""
    from psycopg import sql

    may, superuser = conn.execute(
        "SELECT has_database_privilege(current_database(), 'CREATE'), "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()
    if not may:
        return
    name = sql.Identifier(role)
    statements = [sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(name, name)]
    if not superuser:
        statements.insert(0, sql.SQL("GRANT {} TO CURRENT_USER").format(name))
        statements.append(sql.SQL("REVOKE {} FROM CURRENT_USER").format(name))
    for statement in statements:
        conn.execute(statement)


def _memberships(conn: Any, role: str) -> set[str]:
    """The roles `role` is a member of."""
    rows = conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s",
        (role,),
    ).fetchall()
    return {name for (name,) in rows}


def _pair(
    conn: Any,
    templates: list[str],
    sources: list[str],
    role: str,
    leases: str,
    *,
    shared: bool,
    fresh: bool,
) -> tuple[set[Privilege], set[Privilege]]:
    """The privileges `sources` (the `templates` and the roles they inherit from) hold and
    those `role` holds (none when it is `fresh`), but on the objects of lease roles (`leases`:
    their names' regular expression) and temporary tables; refused when the templates hold
    one that would let a lease plant code in other roles' sessions (review 70c, leases 1-3
    and 5; review 70n, schemas 1), or when PUBLIC may create in the database or one of its
    schemas (review 70n, schemas 3)."""
    wanted = grants.privileges(conn, sources, role, shared=shared, leases=leases)
    grants.refuse_planting(conn, templates, wanted)
    if not shared:  # nor may PUBLIC (review 70n, schemas 3)
        grants.refuse_public_create(conn, leases)
    return wanted, set() if fresh else grants.held(conn, role, shared=shared, leases=leases)


def _session_options(settings: Mapping[str, Any]) -> str:
    """The admin session's search path and timeouts. Its search path is `pg_catalog, pg_temp`
    only: a lease that may create in a schema of the default path (`"$user", public`) could
    otherwise define a closer match for a function or operator the admin calls unqualified
    (`public.starts_with(name, text)` beats `pg_catalog.starts_with(text, text)` for a `name`
    argument) and have it run with the admin's rights (CVE-2018-1058's pattern; the start-up
    options outrank any ALTER ROLE/DATABASE ... SET). No statement waits on another session's
    lock longer than `limits.POSTGRES_LOCK_TIMEOUT_MS` (a lease's open transaction on what its
    role owns would hold DROP OWNED, and the broker's thread with it, for as long as it likes:
    the revocation fails, the lease stays REVOKING and the sweep retries) and none runs longer
    than `limits.POSTGRES_STATEMENT_TIMEOUT_MS` past the wait for sessions to end."""
    statement_ms = limits.POSTGRES_STATEMENT_TIMEOUT_MS + settings["terminate_wait_ms"]
    return (
        "-c search_path=pg_catalog,pg_temp "
        f"-c lock_timeout={limits.POSTGRES_LOCK_TIMEOUT_MS} -c statement_timeout={statement_ms}"
    )


def _short_wait(conn: Any, statement: Any, wait_ms: int | None = None) -> None:
    """Run `statement` waiting at most `wait_ms` (default `OWN_ROW_LOCK_MS`) for a lock (in a
    transaction of its own: `SET LOCAL`)."""
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = {OWN_ROW_LOCK_MS if wait_ms is None else wait_ms}")
        conn.execute(statement)


def _take_shared(conn: Any, role: str, wait_ms: int) -> None:
    """REVOKE `role`'s memberships (a role made by an older release is a member of its
    templates), its privileges in the shared catalogs and the memberships in it, ending the
    sessions of each role that may act as it (`locks.revoke_members`: last, as it may fail
    keeping them; review 75i, pglast2 1)."""
    from psycopg import sql

    for group in sorted(_memberships(conn, role)):
        conn.execute(
            sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(role))
        )
    grants.apply(conn, "REVOKE", role, grants.held(conn, role, shared=True))
    locks.revoke_members(conn, role, lambda member: _end_sessions(conn, member, wait_ms))


def _end_sessions(conn: Any, role: str, wait_ms: int, *, strict: bool = True) -> None:
    """End every session of `role` (SecretError, to retry, unless all ended within `wait_ms`
    each); not `strict`: signal them, waiting for none (ten sessions that take no interrupt
    would hold the statement ten times `wait_ms`, past its timeout: review 71b, pglease 4)."""
    ended = conn.execute(
        "SELECT pid, pg_terminate_backend(pid, %s) FROM pg_stat_activity WHERE usename = %s",
        (wait_ms if strict else 0, role),
    ).fetchall()
    if strict and not all(ok for _pid, ok in ended):
        raise SecretError(SecretFailure.ENGINE_FAILED, f"a session of {role} did not end in time")
