"""Review 68l, enroll: `--over-copy` without the authority's pin, and what an over-copy
enrollment says it did.

1. The operator's word without the pin (medium, the lead's decision: deny when in doubt).
   Review 68a, enroll 1 made a COPY_CONFLICT name the ticket's authority pin and ask for
   `--over-copy --authority-pin PIN`, but `--over-copy` alone was still taken: an operator who
   asked the authority's operator "did you send me a ticket?" and heard "yes" (a thief's fork
   from a stolen early backup, ending with a key the authority rotated away from, having
   replaced the real ticket in transit) replaced the authority's real later history with the
   fork. Fixed: `over_copy` without `authority_pin` is refused before anything is read,
   stored or sent, as ArgumentError (`troth.enrollment.check_over_copy`: `enrollment`,
   `resumption`, `Node.enroll`, `RunningNode.enroll`, the node's `enroll` operation) and as a
   usage error by `troth enroll` (exit 2), each saying to get the pin from the authority's
   operator. `resume(over_copy=)` takes `authority_pin=` and checks it against the ticket's
   history (it had no pin at all).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troth
from tests.support.channels import MEMBER
from tests.support.cli import run
from tests.support.enroll import ticket_pin
from tests.support.nodes import MemNet, run_memnet
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.enrollment import resume
from troth.errors import ArgumentError
from troth.node import Node
from troth.storage import SqliteVoucherStore


def _ticket(authority: Authority) -> Ticket:
    return authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=NOW
    )


def _refused(request: bytes) -> bytes:
    raise AssertionError("nothing is sent for over_copy without the pin")


def _nothing_changed(members: Node, authority: Authority) -> None:
    assert members.identities.stored_changes(authority.identifier) == 6  # globex's copy stands
    assert not members.identities.linked(authority.identifier)
    assert SqliteVoucherStore(members.db).refuted() == []


def test_over_copy_without_the_pin_is_refused_before_anything(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    with pytest.raises(ArgumentError) as refused:
        enroll_alice(members, _ticket(authority), None, _refused, over_copy=True)
    assert refused.value.parameter == "authority_pin"
    assert "from the authority's operator" in str(refused.value)
    assert members.wallet.pending_enrollments("alice") == []
    _nothing_changed(members, authority)


def test_a_resumption_with_the_flag_needs_the_pin_too(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    ticket = _ticket(authority)

    def lost(request: bytes) -> bytes:
        authority.enroll(request, now=NOW)  # redeemed; the answer never arrives
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        enroll_alice(members, ticket, ticket_pin(ticket, now=NOW), lost, over_copy=True)
    (pending,) = members.wallet.pending_enrollments("alice")
    with pytest.raises(ArgumentError) as refused:
        resume(
            members.identities,
            members.wallet,
            pending,
            clock=FixedClock(NOW),
            send=_refused,
            over_copy=True,
        )
    assert refused.value.parameter == "authority_pin"
    assert members.wallet.pending_enrollments("alice") == [pending]
    _nothing_changed(members, authority)


def test_troth_enroll_over_copy_without_the_pin_is_a_usage_error(
    acme: tuple[Authority, Node, Node],  # noqa: F811
    tmp_path: Path,
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    held = tmp_path / "ticket"
    held.write_text(str(_ticket(authority)))
    held.chmod(0o600)
    refused = run("enroll", str(held), "--as", "alice", "--node", "members", "--over-copy", code=2)
    assert "--over-copy needs --authority-pin" in refused.stderr
    assert "from the authority's operator" in refused.stderr
    assert members.wallet.pending_enrollments("alice") == []
    _nothing_changed(members, authority)


READ = {"orders.access": "read"}


def test_node_enroll_over_copy_without_the_pin_is_an_argument_error() -> None:
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        agents.identities.create("customer")
        with pytest.raises(ArgumentError) as refused:
            agents.enroll(
                acme.ticket({"orders.access": "read"}), identity="customer", over_copy=True
            )
        assert (refused.value.call, refused.value.parameter) == ("Node.enroll", "authority_pin")
        assert agents.credentials("customer") == []


def test_a_running_node_refuses_over_copy_without_the_pin(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        desk = await net.node("desk")
        with pytest.raises(ArgumentError) as refused:
            await desk.enroll(net.ticket(), "desk", over_copy=True)  # the control operation's
        assert refused.value.parameter == "authority_pin"
        assert desk.node.wallet.pending_enrollments("desk") == []
        assert desk.node.wallet.held("desk") == []

    run_memnet(test, tmp_path / "home")
