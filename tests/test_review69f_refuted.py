"""Review 69f: attacks on the enrollment pin path that did not work.

1. An over-copy enrollment whose replacement of the conflicting copy fails half-way (the new
   history written, the refuted changes' rows not): nothing of it stays. The copy held and the
   ticket's history are one transaction with the refuted rows, so the old copy is never lost
   with the new one not stored; the credential, held in its own commit before, stays held.
2. An over-copy enrollment killed between holding the credential and replacing the copy
   (the copy stands, nothing pending): the same command again completes it, the authority
   answering the repeat of that redemption with the credential it recorded (one credential,
   the copy replaced, its changes refuted).
"""

from __future__ import annotations

import pytest

import troth.enrollment
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_review68l_enroll import acme_ticket
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of
from troth.errors import StorageError
from troth.node import Node
from troth.storage import SqliteVoucherStore


def test_an_over_copy_failing_mid_replacement_keeps_the_old_copy(
    acme: tuple[Authority, Node, Node],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority, node, members = acme
    forged = stores_globex_copy(members, make_two(), authority.identifier)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    store = members.identities.store

    def disk_full(identifier: bytes, changes: object) -> None:
        raise StorageError("disk full")

    monkeypatch.setattr(store, "add_refuted", disk_full)

    def to_acme(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    with pytest.raises(StorageError, match="disk full"):
        enroll_alice(members, acme_ticket(authority), pin, to_acme, over_copy=True)
    digest = authority.identifier.digest
    held = store.get_history(digest)
    assert held is not None
    assert bytes(held[0]) == forged.identity.history  # the old copy, whole
    assert members.identities.stored_changes(authority.identifier) == 6
    assert not members.identities.linked(authority.identifier)
    assert SqliteVoucherStore(members.db).refuted() == []
    assert members.wallet.pending_enrollments("alice") == []  # the credential held
    assert len(members.wallet.held("alice")) == 1


def test_an_over_copy_killed_before_the_replacement_is_completed_by_the_same_command(
    acme: tuple[Authority, Node, Node],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority, node, members = acme
    forged = stores_globex_copy(members, make_two(), authority.identifier)
    pin = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    ticket = acme_ticket(authority)

    def to_acme(request: bytes) -> bytes:
        return authority.enroll(request, now=NOW).encode()

    def killed(*args: object, **kwargs: object) -> None:
        raise SystemExit(137)

    with monkeypatch.context() as patch:
        patch.setattr(troth.enrollment, "_take_history", killed)
        with pytest.raises(SystemExit):
            enroll_alice(members, ticket, pin, to_acme, over_copy=True)
    assert members.identities.stored_changes(authority.identifier) == 6  # the copy stands
    assert members.wallet.pending_enrollments("alice") == []
    first = members.wallet.held("alice")
    assert len(first) == 1
    again = enroll_alice(members, ticket, pin, to_acme, over_copy=True)
    assert again.authority_copy is troth.enrollment.AuthorityCopy.REPLACED
    assert members.identities.stored_changes(authority.identifier) == 1
    assert members.identities.linked(authority.identifier)
    made_up = (authority.identifier.digest, 5, forged.identity.current_change_hash)
    assert SqliteVoucherStore(members.db).refuted() == [made_up]
    assert [h.chain for h in members.wallet.held("alice")] == [h.chain for h in first]
