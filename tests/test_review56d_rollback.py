"""Review 56d, rollback 1: the rollback guard arms the `authority` scope (its entry at 0, in
node.db and in the guard) when a ticket is made (review 52c, rollback 4), so a store holding
a ticket is never read as fresh with its guard deleted. A node.db whose tickets an older troth
made (before review 52c armed the scope, before review 51d counted anything) held tickets and
no entry: upgraded, and opened by a troth that knows the scope, it stayed unarmed until the
next ticket made or counted write, so a copy taken in between (or the pre-upgrade backup
itself), put back with its guard deleted once a ticket was redeemed, read as a fresh store and
the redeemed ticket was redeemed again. Review 54t, rollback 1 closed the same gap for the
`policy` scope only (docs/storage.md, "Rollback guard": the attacker)."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import (
    copy_db,
    forget_armed_scopes,
    node_db,
    restore_db,
    restores_found,
)
from tests.support.leases import broker_at, first_lease, revoked_then_restored_unguarded
from troth.errors import AuthorityError
from troth.storage.rollback import guard_path, read_guard

CONFIG = {"scopes": ["read"], "ttl": 300, "audience": "x"}


def _as_an_older_troth_left_it(path: Path) -> None:
    """node.db as a troth from before review 52c left it: tickets and no `authority` entry,
    no guard."""
    forget_armed_scopes(path)
    guard_path(path).unlink()


def test_rollback1_a_copy_of_an_upgraded_store_restored_without_its_guard_is_found(
    troth_home: Path, tmp_path: Path
) -> None:
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    path = node_db(troth_home, "acme")
    _as_an_older_troth_left_it(path)
    with troth.Node.open("acme") as acme:
        acme.authority()  # the upgraded troth opens the authority (its daemon's start, a command)
    assert read_guard(guard_path(path)) == {"authority": 0}  # armed: a copy from now replays
    copy = tmp_path / "acme.db"
    copy_db(path, copy)
    with troth.Node.open("a") as a:
        a.enroll(ticket)
    restore_db(path, copy)
    guard_path(path).unlink()
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)  # redeemed again: a second member from a one-use ticket
    assert [(row.counter, row.guard) for row in restores_found(path)] == [(0, None)]


def test_rollback2_a_broker_copy_of_an_upgraded_store_restored_without_its_guard_is_found(
    tmp_path: Path,
) -> None:
    """The broker's side: a lease an older troth issued (none armed the `broker` scope before
    review 52c) arms nothing when the upgraded broker opens, so a copy taken then, put back
    with its guard deleted after the lease was revoked, reads as fresh: the revoked lease is
    open again and its token validates. Was a strict xfail until review 56o, rollback 1 (the
    broker arms its scope when it opens a store holding leases and no entry)."""
    path = tmp_path / "node.db"
    _world, policy, issued = first_lease(path, now=NOW, config=CONFIG)
    _as_an_older_troth_left_it(path)
    with broker_at(path, now=NOW + 1, policy=policy):
        pass  # the upgraded troth opens the broker
    revoked_then_restored_unguarded(path, at=NOW + 2, policy=policy, issued=issued)
