"""Review 50g, authority 1 (closed by review 51d, rollback 1: the rollback guard beside node.db,
docs/storage.md "Rollback guard"; the restored authority's tickets are used up): an authority's
node.db restored from a copy taken before a one-time ticket was redeemed redeems that ticket
again, for anyone holding its code (a second member made from a ticket already used). The
authority could not tell a restored store from its current one: nothing outside node.db records the
redemption (a fix needs a record the copy cannot roll back: e.g. a monotonic counter kept apart
from node.db, or the feed's holders' word). The residual is bounded by the ticket's window (10
minutes by default): only tickets still unexpired when the copy is restored are open again
(docs/storage.md, "Restoring a backup")."""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.support.backups import copy_db, node_db, restore_db
from troth.errors import AuthorityError


def test_a_restored_authority_does_not_redeem_a_used_ticket_again(
    troth_home: Path, tmp_path: Path
) -> None:
    with troth.Node.open("acme") as acme:
        ticket = acme.create_authority().ticket({"team.name": "x"})
    copy = tmp_path / "acme.db"
    copy_db(node_db(troth_home, "acme"), copy)
    with troth.Node.open("a") as a:
        a.enroll(ticket)
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)  # used up
    restore_db(node_db(troth_home, "acme"), copy)
    with troth.Node.open("b") as b, pytest.raises(AuthorityError):
        b.enroll(ticket)
