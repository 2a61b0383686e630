"""Review 67y, remote: attacks on 67i's `--over-copy` that did not work.

1. A crash after the credential is stored but before the copy is replaced (review 67v's
   note): acme answers an enrollment given with the flag, desk holds the credential (the
   pending record cleared), and dies before `accept_ticket` replaced globex's made-up copy of
   acme. `troth enroll --over-copy` again with the same ticket (a repeat redemption: acme
   answers the same identity again) replaces the copy, its changes recorded refuted; without
   the flag the repeat is refused as COPY_CONFLICT and the copy stands.
"""

from __future__ import annotations

from typing import Any

import pytest

import troth.enrollment
from tests.support.channels import MEMBER
from tests.support.enroll import ticket_pin
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import accept_ticket
from troth.errors import IdentityError, IdentityFailure
from troth.node import Node
from troth.storage import SqliteVoucherStore


def test_a_repeat_with_the_flag_replaces_the_copy_a_crash_left(
    acme: tuple[Authority, Node, Node],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    ticket = authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )
    real = accept_ticket

    def killed(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("over_copy"):  # after the answer: the credential is held
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    def send(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    monkeypatch.setattr(troth.enrollment, "accept_ticket", killed)
    pin = ticket_pin(ticket, now=NOW)  # acme's, read out by its operator
    with pytest.raises(KeyboardInterrupt):
        enroll_alice(members, ticket, pin, send, over_copy=True)
    monkeypatch.undo()
    assert members.wallet.pending_enrollments("alice") == []
    assert members.identities.stored_changes(authority.identifier) == 6  # not replaced
    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, ticket, None, send)
    assert refused.value.reason is IdentityFailure.COPY_CONFLICT
    assert members.identities.stored_changes(authority.identifier) == 6
    done = enroll_alice(members, ticket, pin, send, over_copy=True)
    assert done.authority == authority.identifier
    assert members.identities.stored_changes(authority.identifier) == 1  # acme's own history
    assert SqliteVoucherStore(members.db).refuted() != []
