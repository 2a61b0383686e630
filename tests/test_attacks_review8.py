"""Review 8: attacks on the fixes of review 7 (the quota per account, the postgres renewal's
memberships, the authority's own supersession, `presentable`, the free feed walk). Each test
asserts the secure (or, for a regression, the honest user's) behaviour; the ones that fail on
the code they were written against are strict xfails naming the bug."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.cli import run
from tests.support.postgres import PgServer
from tests.support.traces import tool_call
from tests.test_attacks_review7 import (
    SECRET,
    _broad_and_narrow,
    _login,
    _migrate_world,
    _pg_config,
    _pg_now,
    _put,
)
from troth import limits
from troth.clock import SystemClock
from troth.credentials import verify_feed
from troth.errors import SecretError
from troth.node import init_node, open_node, troth_home
from troth.trace import TraceRecorder, open_node_log

# -- postgres: what a renewal leaves an open session ------------------------------------------


def test_a_renewal_ends_the_old_templates_rights_in_an_open_session(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """Review 7's fix: a renewal REVOKEs the template an operator replaced. But the agent's
    session, opened before, ran `SET ROLE <old template>`: PostgreSQL checks membership only
    when SET ROLE runs, so the session goes on as the old template after the REVOKE and reads
    `customers` until it disconnects (as long as it likes: the renewed lease keeps it alive).
    The revoke path ends a lease's sessions for exactly this reason; a renewal that takes a
    membership away must end them too (or be refused). (Since a lease's role holds copies of
    its template's privileges, never a membership, SET ROLE is refused: the session reads
    `customers` with its own copy, which the renewal must take away.)"""
    import psycopg

    broad, narrow, dbname, world, broker = _broad_and_narrow(tmp_path, pg_server, "r8")
    agent = world.credential_a()
    try:
        issued = broker.issue(agent, SECRET, scope=["orders:read"], now=_pg_now())
        with _login(pg_server, dbname, issued.credential.reveal()) as session:
            # refused (no membership to use): its copied privileges read customers
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                session.execute(f"SET ROLE {broad}")
            _put(broker, _pg_config(pg_server, dbname, {"orders:read": narrow}))
            try:
                broker.renew(agent, issued.lease_id, ttl=600, now=_pg_now())
            except SecretError:
                return  # refused: the lease ends at its expiry, as for a withdrawn scope
            try:
                cards = session.execute("SELECT card FROM customers").fetchall()
            except (psycopg.errors.InsufficientPrivilege, psycopg.OperationalError):
                cards = []  # the right is gone, or the session was ended
    finally:
        broker.close()
    assert cards == []


def test_what_a_lease_wrote_never_runs_with_its_templates_rights_after_it_ends(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """Review 7's fix: revoke runs `DROP OWNED BY <lease>` (no REASSIGN to the admin), so the
    code a lease wrote dies with it. But the lease's role is a member of its template, and a
    member may hand what it owns to that role: the agent's `orders:migrate` lease writes a
    SECURITY DEFINER function and runs `ALTER FUNCTION ... OWNER TO <migrate template>`. DROP
    OWNED then finds nothing, and the function runs as the template for every caller (PUBLIC
    may EXECUTE): once the operator has withdrawn `orders:migrate` and the agent holds only an
    `orders:read` lease, it still runs it, as the migrate template. What a lease's role
    gives away must not outlive the lease with the template's rights (templates should be
    NOINHERIT/ownership of objects refused, or the template's objects dropped too)."""
    import psycopg

    reader, migrator, dbname, world, broker = _migrate_world(tmp_path, pg_server, "r8")
    agent = world.credential_a()
    try:
        migrate = broker.issue(agent, SECRET, scope=["orders:migrate"], now=_pg_now())
        with _login(pg_server, dbname, migrate.credential.reveal()) as session:
            # in the lease's own schema (review 70n), which PUBLIC may use
            schema = f'"{migrate.lease.engine_ref}"'
            session.execute(
                "CREATE FUNCTION r8_make(name text) RETURNS text LANGUAGE plpgsql "
                "SECURITY DEFINER AS $$ BEGIN RETURN current_user::text; END $$; "
                f"GRANT USAGE ON SCHEMA {schema} TO PUBLIC"
            )
            # refused: the lease's role is no member of its template
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                session.execute(f"ALTER FUNCTION r8_make(text) OWNER TO {migrator}")
        broker.revoke(agent, migrate.lease_id, now=_pg_now())
        _put(broker, _pg_config(pg_server, dbname, {"orders:read": reader}))  # withdrawn
        read = broker.issue(agent, SECRET, scope=["orders:read"], now=_pg_now())
        with _login(pg_server, dbname, read.credential.reveal()) as session:
            try:
                call = f"SELECT {schema}.r8_make('r8_planted')"
                ran_as = session.execute(call).fetchone()[0]
            except (
                psycopg.errors.UndefinedFunction,
                psycopg.errors.InvalidSchemaName,
                psycopg.errors.InsufficientPrivilege,
            ):
                ran_as = None
    finally:
        broker.close()
    assert ran_as != migrator


# -- the authority: its own rotation published on the read path -------------------------------


def test_a_full_feed_is_still_served_after_the_authority_rotates(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed holds MAX_FEED_ENTRIES (members' revocations filled it: the authority can
    append nothing more, but it serves what it holds, and every verifier needs a fresh page).
    The authority's key is stolen and it rotates. Review 7 made every page request append the
    authority's own supersession first (`_feed_signer`, `held_feed`), and the append is refused
    (FEED_LIMIT): from then on no page is served and the hosting node has no held feed, so every
    verifier's copy goes stale and refuses every member's credential: one rotation takes the
    whole authority down. Serving the feed must not depend on room for a new entry."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        authority.revoke_credentials([b"\x01" * 32, b"\x02" * 32], now=NOW)
        monkeypatch.setattr(limits, "MAX_FEED_ENTRIES", 2)  # the feed is full
        authority.identities.rotate(authority.config.name, now=NOW + 10)
        now = NOW + 20
        page = authority.feed(now=now)
        feed = verify_feed(page, authority=authority.identifier, now=now, max_staleness=60)
        assert feed.count >= 2
        assert authority.held_feed(now=now).count >= 2


# -- traces: an honest export after its signer's routine rotation -----------------------------


def test_an_honest_export_still_verifies_after_its_agent_rotates(tmp_path: Path) -> None:
    """Review 7 made `troth trace verify --file` check each signer history against the node's
    stored copies, "as its own log". A record carries the history its agent had when it
    signed; the agent then rotates (its primary key's ttl, or routine hygiene) and the node
    stores the longer history. The export, untouched, is now answered "signer identity
    invalid: history is older than the stored copy" (exit 1): every export made before any
    rotation becomes unverifiable by the node that made it, and by any auditor node that has
    seen the rotation. (The node's own log fails the same way, `troth trace verify` with no
    --file: the check was already there.) An older history that the stored copy extends is
    the record's own time, not a rollback; only a fork of the stored copy is."""
    run("identity", "create", "support")
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        agent.record(tool_call())
    run("trace", "checkpoint")
    export = tmp_path / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export))
    run("trace", "verify", "--file", str(export))  # valid before the rotation
    run("identity", "rotate", "support")
    run("trace", "verify", "--file", str(export))  # the same bytes: still valid
    run("trace", "verify")  # and the node's own log
