"""Review 68l: attacks on review 68a's enrollment changes (the pin in a COPY_CONFLICT,
`--over-copy --authority-pin`, the network path judged without the flag) that did not work.

1. A pin for another identifier (globex's own, read out by globex's operator) with the flag
   over globex's made-up copy of acme: refused as "not from the authority you confirmed"
   before anything is sent or stored.
2. A pin for a key the authority rotated away from (the one the operator wrote down before
   acme's last rotation) with the flag and acme's real ticket: refused before anything is
   sent or stored (no pending record, the copy stands, nothing refuted).
3. Pin and flag over the network: a wrong key for the hub is refused before anything is
   recorded; the hub's right pin with the flag, no conflicting copy held, enrolls and says the
   copy agreed (the flag replaced nothing).
4. Odd formatting of the pin (case, whitespace, wrong length, extra colons, NUL, the DID
   form): `check_ticket` (the check `--over-copy --authority-pin` runs) takes the same pin
   however its key's case or its outer whitespace, refuses a malformed one as ConfigError and
   a key of another length as the wrong key (never a prefix taken), never another exception;
   `Node.enroll` refuses a malformed one as ArgumentError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.support.enroll import ticket_pin
from tests.support.nodes import MemNet, run_memnet
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_review68l_enroll import acme_ticket, copy_stands, refused_send
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.client import authority_pin_of, check_ticket
from troth.errors import ArgumentError, ConfigError, IdentityError, IdentityFailure
from troth.node import Node


def test_a_pin_for_another_identifier_with_the_flag_isrefused_send(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    two = make_two()
    stores_globex_copy(members, two, authority.identifier)
    globex = authority_pin_of(two.globex.identity)  # a real pin, of globex
    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, acme_ticket(authority), globex, refused_send, over_copy=True)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert "not from the authority you confirmed" in str(refused.value)
    copy_stands(members, authority)


def test_a_pin_of_a_key_rotated_away_from_with_the_flag_isrefused_send(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    stale = authority_pin_of(node.identities.get("acme", now=NOW).identity)
    node.identities.rotate("acme", now=NOW)  # acme's real change 1
    stores_globex_copy(members, make_two(), authority.identifier)
    with pytest.raises(IdentityError) as refused:
        enroll_alice(members, acme_ticket(authority), stale, refused_send, over_copy=True)
    assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert "not the pinned one" in str(refused.value)
    copy_stands(members, authority)


def test_pin_and_flag_over_the_network(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        desk = await net.node("desk")
        ticket = net.ticket()
        pin = ticket_pin(ticket, now=net.clock.now())
        wrong = pin.rpartition(":")[0] + ":" + "ab" * 32
        with pytest.raises(IdentityError) as refused:
            await desk.enroll(ticket, "desk", wrong, over_copy=True)
        assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
        assert desk.node.wallet.pending_enrollments("desk") == []
        assert desk.node.wallet.held("desk") == []
        done = await desk.enroll(ticket, "desk", pin, over_copy=True)
        assert done["authority_copy"] == "agreed"  # nothing to replace, and it says so
        assert desk.node.wallet.pending_enrollments("desk") == []

    run_memnet(test, tmp_path / "home")


def test_odd_pins_are_typed(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    ticket = acme_ticket(authority)
    pin = ticket_pin(ticket, now=NOW)
    before = members.identities.stored_changes(authority.identifier)
    identifier, _, key = pin.rpartition(":")
    same = (f"{identifier}:{key.upper()}", f" {pin}\n", f"did:troth:{identifier[1:]}:{key}")
    malformed = (
        pin.upper(),
        f"{identifier.lower()}:{key}",
        f"{identifier}: {key}",
        f"{identifier}::{key}",
        f"{pin}\x00",
        "",
        ":",
        f"{identifier}:",
        "x" * 10_000,
    )
    other_length = (pin[:-2], pin + "00", pin[:-1])

    def check(given: str) -> object:
        return check_ticket(members.identities, ticket, now=NOW, authority_pin=given)

    for given in same:
        assert check(given) == authority.identifier
    for given in malformed:
        with pytest.raises(ConfigError, match="not an authority pin"):
            check(given)
    for given in other_length:
        with pytest.raises(IdentityError) as refused:
            check(given)
        assert refused.value.reason is IdentityFailure.UNATTESTED_CHECKPOINT
    assert members.identities.stored_changes(authority.identifier) == before  # stores nothing
    with troth.Node.open("agents") as agents:
        for given in malformed:
            with pytest.raises(ArgumentError) as wrong:
                agents.enroll(str(ticket), over_copy=True, authority_pin=given)
            assert wrong.value.parameter == "authority_pin"
