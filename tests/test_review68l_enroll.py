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
2. A flagged enrollment that replaced nothing said so nowhere (low): with `--over-copy` the
   enrollment can succeed while the conflicting copy stands (a copy linked meanwhile, review
   68a, refuted 4: the replacement after the answer is judged again and refused, suppressed),
   and `troth enroll` printed "enrolled ..." as for a replacement: the operator believed the
   authority's history taken. Fixed: `Enrolled.authority_copy` (`troth.enrollment.
   AuthorityCopy`: agreed, replaced, stands), the `--json` field `authority_copy`, and a line
   of `troth enroll`'s text (always with `--over-copy`, and whenever the copy stands).
3. A malformed `--authority-pin` (low; the pin `--over-copy` now needs): `troth enroll` read
   the ticket, then failed in `check_ticket` with a ConfigError, exit 3 (the node's
   configuration, not the command line: the CLI's exit 2 is for bad arguments, as
   `Node.enroll` raises ArgumentError), its message repeating the whole value (100 kB given,
   100 kB printed). Fixed (`troth.cli.common`, the option's callback): a usage error before
   anything is read, the value cut to 80 characters.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import troth
from tests.support.channels import MEMBER
from tests.support.cli import run
from tests.support.enroll import ticket_pin
from tests.support.nodes import MemNet, run_memnet
from tests.test_review30a_enrollment import acme, stores_globex_copy  # noqa: F401
from tests.test_review66g_enroll import enroll_alice
from tests.test_review67e_enroll import theft
from tests.test_review68a_refuted import fork_flagged_while_the_copy_is_linked
from tests.test_trust_scope import NOW, make_two
from troth.authority import Authority
from troth.authority.tickets import Ticket
from troth.clock import FixedClock
from troth.enrollment import AuthorityCopy, resume
from troth.errors import ArgumentError
from troth.node import Node, open_node
from troth.storage import PendingEnrollmentRecord, SqliteVoucherStore


def acme_ticket(authority: Authority, *, now: int = NOW) -> Ticket:
    """A ticket of acme's (at acme's node)."""
    return authority.create_ticket(
        creator=authority.identifier, attributes=MEMBER, address="node:acme-node", now=now
    )


def refused_send(request: bytes) -> bytes:
    """A `send` for an enrollment refused before its exchange."""
    raise AssertionError("nothing is sent for an enrollment refused up front")


def copy_stands(members: Node, authority: Authority) -> None:
    """Nothing changed at desk: no pending record of alice's, globex's copy of acme stands."""
    assert members.wallet.pending_enrollments("alice") == []
    assert members.identities.stored_changes(authority.identifier) == 6
    assert not members.identities.linked(authority.identifier)
    assert SqliteVoucherStore(members.db).refuted() == []


def _held(tmp_path: Path, ticket: Ticket) -> str:
    held = tmp_path / "ticket"
    held.write_text(str(ticket))
    held.chmod(0o600)
    return str(held)


def test_over_copy_without_the_pin_isrefused_send_before_anything(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    with pytest.raises(ArgumentError) as refused:
        enroll_alice(members, acme_ticket(authority), None, refused_send, over_copy=True)
    assert refused.value.parameter == "authority_pin"
    assert "from the authority's operator" in str(refused.value)
    copy_stands(members, authority)


def test_a_resumption_with_the_flag_needs_the_pin_too(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, _node, members = acme
    pending = interrupted_over_copy(authority, members)
    with pytest.raises(ArgumentError) as refused:
        resume(
            members.identities,
            members.wallet,
            pending,
            clock=FixedClock(NOW),
            send=refused_send,
            over_copy=True,
        )
    assert refused.value.parameter == "authority_pin"
    assert members.wallet.pending_enrollments("alice") == [pending]
    assert members.identities.stored_changes(authority.identifier) == 6  # globex's copy stands


def test_troth_enroll_over_copy_without_the_pin_is_a_usage_error(
    acme: tuple[Authority, Node, Node],  # noqa: F811
    tmp_path: Path,
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    held = _held(tmp_path, acme_ticket(authority))
    refused = run("enroll", held, "--as", "alice", "--node", "members", "--over-copy", code=2)
    assert "--over-copy needs --authority-pin" in refused.stderr
    assert "from the authority's operator" in refused.stderr
    copy_stands(members, authority)


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


def test_the_flagged_enrollment_says_the_copy_linked_meanwhile_stands(
    acme: tuple[Authority, Node, Node],  # noqa: F811
) -> None:
    authority, node, members = acme
    theft(authority, node, members)
    done = fork_flagged_while_the_copy_is_linked(authority, node, members)
    assert done.authority_copy is AuthorityCopy.STANDS  # it said nothing: the copy stood
    assert done.to_json()["authority_copy"] == "stands"
    assert members.identities.stored_changes(authority.identifier) == 5


def test_troth_enroll_over_copy_says_the_copy_was_replaced(
    acme: tuple[Authority, Node, Node],  # noqa: F811
    tmp_path: Path,
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    ticket = acme_ticket(authority, now=int(time.time()))  # at the command's clock
    pin = ticket_pin(ticket, now=NOW)
    args = ("enroll", _held(tmp_path, ticket), "--as", "alice", "--node", "members", "--over-copy")
    done = run(*args, "--authority-pin", pin)
    assert "replaced the conflicting copy" in done.stdout
    with open_node("members") as again:  # as the command left it
        assert again.identities.stored_changes(authority.identifier) == 1


def test_a_malformed_authority_pin_is_a_usage_error_cut_short(
    acme: tuple[Authority, Node, Node],  # noqa: F811
    tmp_path: Path,
) -> None:
    authority, _node, members = acme
    stores_globex_copy(members, make_two(), authority.identifier)
    ticket = acme_ticket(authority)
    identifier, _, key = ticket_pin(ticket, now=NOW).rpartition(":")
    args = ("enroll", _held(tmp_path, ticket), "--as", "alice", "--node", "members", "--over-copy")
    for odd in ("x" * 100_000, f"{identifier.lower()}:{key}", f"{identifier}: {key}", ":"):
        refused = run(*args, "--authority-pin", odd, code=2)
        assert "is not an authority pin: IDENTIFIER:KEY (hex)" in refused.stderr
        assert len(refused.stderr) < 1_000  # not the whole value again
    copy_stands(members, authority)


def interrupted_over_copy(authority: Authority, members: Node) -> PendingEnrollmentRecord:
    """An enrollment with the flag and the pin over globex's copy whose answer was lost (the
    ticket redeemed): its pending record (reviews 68l, 68w)."""
    stores_globex_copy(members, make_two(), authority.identifier)
    ticket = acme_ticket(authority)

    def lost(request: bytes) -> bytes:
        authority.enroll(request, now=NOW)  # redeemed; the answer never arrives
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        enroll_alice(members, ticket, ticket_pin(ticket, now=NOW), lost, over_copy=True)
    (pending,) = members.wallet.pending_enrollments("alice")
    return pending
