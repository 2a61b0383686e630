"""Review 65c, refuted: attacks on the rollback guard and the hosted feed's re-revoke that did
not work (each test fails if the defence it names breaks)."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import copy_db, feed_gone_back, node_db, restore_db, restores_found
from troth.errors import AuthorityError
from troth.node import init_node, open_node
from troth.node.trust import read_hosted
from troth.storage.rollback import guard_path


def test_a_store_gone_back_is_revoked_again_once_not_at_every_read(troth_home: Path) -> None:
    """The re-revoke (64j feed 1, 65c feed 1-2) appends to the feed: a holder reading the
    hosted feed again and again must not append again each time (unbounded feed growth). The
    line it took extends itself: nothing more is written."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        start = authority.held_feed(now=NOW)
        node.identities.create(now=NOW, name="m")
        node.identities.rotate("m", now=NOW)
        member = node.identities.get("m", now=NOW).identity
        authority.revocations.supersede(member, now=NOW)
        authority.revoke_identity(member.identifier, now=NOW)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        again = read_hosted(authority, held, NOW)
        assert again is not None
        assert again.identity_revoked(member.identifier.digest)
        assert again.supersession(member.identifier) == held.supersession(member.identifier)
        tip = authority.store.revocation_tip()
        for _ in range(3):
            read = read_hosted(authority, again, NOW)
            assert read is not None
            assert read.count == again.count
        assert authority.store.revocation_tip() == tip


def test_a_guard_emptied_beside_a_restored_copy_does_not_let_a_used_ticket_in(
    troth_home: Path, tmp_path: Path
) -> None:
    """A restored node.db put back with its guard truncated to nothing (not deleted: 57i's
    thief deletes it) reads as no guard, which fails closed for a store that armed its scope:
    the ticket redeemed after the copy is not redeemed again."""
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    path = node_db(troth_home, "acme")
    copy_db(path, tmp_path / "acme.db")
    with troth.Node.open("a") as a:
        a.enroll(ticket)
    restore_db(path, tmp_path / "acme.db")
    guard_path(path).write_bytes(b"")
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)
    assert [row.scope for row in restores_found(path)] == ["authority"]


def test_another_nodes_node_db_ahead_of_this_guard_is_found(
    troth_home: Path, tmp_path: Path
) -> None:
    """Two nodes' stores swapped (node.db and its vault key, not the guard): node a's counted
    more than b's guard holds, which a count alone would take for b's own store ahead of its
    guard (crash window 2); the store id (64j rollback 1) finds it as another node's, and a's
    ticket is used up."""
    with troth.Node.open("a") as a:
        authority = a.create_authority()
        authority.ticket({"team.name": "x"})  # unused: voided when found
        for name in ("x", "y", "z"):  # three feed entries counted
            authority.revoke_identity(a.identities.create(name).identifier)
    with troth.Node.open("b") as b:
        b.create_authority().ticket({"team.name": "y"})
    copy_db(node_db(troth_home, "a"), tmp_path / "a.db")
    restore_db(node_db(troth_home, "b"), tmp_path / "a.db")
    vault_key = node_db(troth_home, "a").with_name("vault.key")  # its vault's key with it
    node_db(troth_home, "b").with_name("vault.key").write_bytes(vault_key.read_bytes())
    with troth.Node.open("b") as b:
        b.authority()
    (found,) = restores_found(node_db(troth_home, "b"))
    assert (found.scope, found.another, found.voided) == ("authority", True, 1)
