"""Review 69f, enroll 1 (review 31a, enrollment 4): a copy stored before review 27h's
migration counted as linked (`identities.linked` DEFAULT 1), so it tied a ticket's checkpointed
authority history to its identifier without the authority's pin: a co-trusted authority's copy
made up after a gap, stored back then, let its ticket "from acme" through
(tests/test_review31a_enrollment.py, test_a_copy_from_before_the_linked_column_needs_the_pin,
a strict xfail until now).

Fixed by a migration: every observed copy's linked = 1 (review 27h's default or a link checked
since, not told apart) is 2, "not known" (`IdentityStore.history_checked` False,
`history_linked` True). The tests here hold the rest of that bargain: such a copy still binds as
a linked one does (no over-copy over it), a full one still ties a checkpointed ticket without
the pin, and a pinned ticket ending at it links it (1), so only the first ticket asks the pin.
"""

from __future__ import annotations

import pytest

from tests.test_review30a_enrollment import (  # noqa: F401 (the fixture)
    acme,
    checkpointed_ticket,
    stores_globex_copy,
)
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import accept_ticket, authority_pin_of, check_ticket
from troth.authority.tickets import Ticket, new_code
from troth.enrollment import _ticket_binds
from troth.errors import IdentityError, IdentityFailure
from troth.node import Node
from troth.storage import SqliteDatabase

LINKED = 20
"""node.db's schema version once review 69f's migration (linked = 2, not known) ran."""


def _as_before_the_migration(node: Node, digest: bytes) -> None:
    """`digest`'s row read linked = 1 (review 27h's default), then this troth opens node.db."""
    node.db.execute("UPDATE identities SET linked = 1 WHERE identifier = ?", (digest,))
    node.db.execute(f"PRAGMA user_version = {LINKED - 1}")
    SqliteDatabase(node.db.path).close()
    row = node.db.fetch_one("SELECT linked FROM identities WHERE identifier = ?", (digest,))
    assert row is not None
    assert row[0] == 2


def test_a_full_copy_from_before_ties_a_checkpointed_ticket_without_the_pin(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)
    members.identities.import_history(authority.history(), now=NOW)  # from change 0
    _as_before_the_migration(members, authority.identifier.digest)
    ticket = checkpointed_ticket(authority, node)
    assert check_ticket(members.identities, ticket, now=NOW) == authority.identifier


def test_a_pinned_ticket_links_a_copy_from_before(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    node.identities.rotate("acme", now=NOW)
    digest = authority.identifier.digest
    first = checkpointed_ticket(authority, node)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    check_ticket(members.identities, first, now=NOW, authority_pin=pin)
    accept_ticket(members.identities, first, now=NOW, pinned=True)  # as enrollment stores it
    _as_before_the_migration(members, digest)
    with pytest.raises(IdentityError) as caught:  # not known: the pin asked
        check_ticket(members.identities, checkpointed_ticket(authority, node), now=NOW)
    assert caught.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    check_ticket(members.identities, first, now=NOW, authority_pin=pin)
    accept_ticket(members.identities, first, now=NOW, pinned=True)  # its pin confirmed: linked
    assert members.identities.linked(authority.identifier)
    assert check_ticket(members.identities, checkpointed_ticket(authority, node), now=NOW)


def test_a_copy_from_before_still_binds(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    """Not known binds as linked did: acme's ticket, conflicting with globex's copy, is not
    taken over it even with acme's pin and the operator's over-copy (as over a linked copy;
    over a copy not linked it would be: deny when in doubt)."""
    authority, node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    _as_before_the_migration(members, authority.identifier.digest)
    ticket = Ticket(new_code(), authority.history(), "node:acme-node")
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    binds = _ticket_binds(members.wallet)
    with pytest.raises(IdentityError) as caught:
        check_ticket(
            members.identities, ticket, now=NOW, authority_pin=pin, binds=binds, over_copy=True
        )
    assert caught.value.reason is not IdentityFailure.COPY_CONFLICT
    assert members.identities.stored_changes(authority.identifier) == 6
