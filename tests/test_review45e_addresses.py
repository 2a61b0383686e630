"""Review 45e, addresses: a ticket's address must be something a node can reach, checked
before anything is recorded (docs/formats.md, "Tickets").

Address 1. `troth.node.membership.enroll` recorded the pending enrollment (identity,
authority, ticket, address) before it parsed the ticket's address as a route: a ticket whose
address does not parse (a typo, a hostile ticket) raised RoutingError after the record was
committed, and the node's maintenance then sent it again, with backoff, for a week, each
attempt failing the same way. Was a strict xfail until `Ticket.parse` (and the enrollment's
steps, for a `Ticket` built in code) refused an address that is neither `node:NAME` (a valid
node name) nor a route: DecodeError, nothing recorded.

Address 2. A pending record already stored with such an address (by an earlier version)
was sent again with backoff until given up, then kept for an operator it could never serve.
Was a strict xfail until the maintenance dropped a due record whose ticket or address can
never be used (logged, the record forgotten), contacting no one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, run_memnet
from troth import enrollment
from troth.authority import Authority, Ticket
from troth.credentials import Attributes
from troth.errors import AuthorityError, AuthorityFailure, DecodeError, TrothError
from troth.node.membership import RESUME_AFTER
from troth.node.runtime import MAINTENANCE_SECONDS
from troth.storage import PendingEnrollmentRecord

BAD = [
    "hub:4000",  # no /kind/value pairs
    "/tcp/hub 4000",  # a space in a value
    "/tcp",  # a kind with no value
    "/nowhere/hub",  # an unknown kind
    "/tcp/" + "h" * 300,  # a value over MAX_ADDRESS_TEXT
    "/relay/x" * 17,  # over MAX_ROUTE_LENGTH hops
    "node:",  # no node name
    "node:Hub",  # not a node name (upper case)
    "node:../hub",  # nor this
    "",
]


def _bad_ticket(authority: Authority, address: str, now: int) -> str:
    """A genuine ticket of `authority` (its code stored) carrying `address`: what a hostile
    or mistyped ticket text says (the authority itself no longer creates one)."""
    made = authority.create_ticket(
        creator=authority.identifier, attributes=Attributes(), address=HUB, now=now
    )
    return str(Ticket(made.code, made.authority_history, address))


@pytest.mark.parametrize("address", BAD)
def test_a_ticket_with_an_unreachable_address_does_not_parse(tmp_path: Path, address: str) -> None:
    async def test(net: MemNet) -> None:
        text = _bad_ticket(net.authority, address, net.clock.now())
        with pytest.raises(DecodeError, match="address"):
            Ticket.parse(text)
        from troth.authority.tickets import check_address

        with pytest.raises(DecodeError):
            check_address(address)

    run_memnet(test, tmp_path)


@pytest.mark.parametrize("address", ["node:hub", "node:a.b_c-1", HUB, "/tcp/hub:4000/relay/x"])
def test_the_addresses_a_node_reaches_are_accepted(address: str) -> None:
    from troth.authority.tickets import check_address

    assert check_address(address) == address


@pytest.mark.parametrize("address", BAD)
def test_enrolling_with_an_unreachable_address_records_nothing(
    tmp_path: Path, address: str
) -> None:
    """Address 1: refused (typed), no pending record, nothing sent again later."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        text = _bad_ticket(net.authority, address, net.clock.now())
        with pytest.raises(TrothError) as caught:
            await agent.enroll(text, "agent")
        assert agent.node.wallet.pending_enrollments("agent") == []
        assert isinstance(caught.value, DecodeError)
        assert "address" in str(caught.value)
        assert agent.node.wallet.held("agent") == []

    run_memnet(test, tmp_path)


def test_the_steps_refuse_a_ticket_built_in_code_before_recording(tmp_path: Path) -> None:
    """Address 1, the library's own steps (`troth.enrollment`): a `Ticket` built in code
    never went through `Ticket.parse`."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        made = Ticket.parse(_bad_ticket(net.authority, HUB, net.clock.now()))
        ticket = Ticket(made.code, made.authority_history, "hub:4000")
        node = agent.node
        steps = enrollment.enrollment(
            node.identities, node.wallet, "agent", ticket, clock=net.clock
        )
        with pytest.raises(DecodeError, match="address"):
            enrollment.request_of(steps)
        assert node.wallet.pending_enrollments("agent") == []

    run_memnet(test, tmp_path)


def test_an_authority_creates_no_ticket_with_an_unreachable_address(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority
        for address in BAD:
            with pytest.raises(AuthorityError) as caught:
                authority.create_ticket(
                    creator=authority.identifier,
                    attributes=Attributes(),
                    address=address,
                    now=net.clock.now(),
                )
            assert caught.value.reason is AuthorityFailure.REQUEST_INVALID
            assert "address" in str(caught.value)

    run_memnet(test, tmp_path)


@pytest.mark.parametrize("address", ["hub:4000", "node:../hub"])
def test_a_stored_record_with_an_unreachable_address_is_dropped(
    tmp_path: Path, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Address 2: a record an earlier version stored is dropped at its first due round,
    logged, no channel opened; a good record beside it is resumed as before."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent")
        node, clock = agent.node, net.clock
        text = _bad_ticket(net.authority, address, clock.now())
        identifier = node.identities.find("agent").identifier
        record = PendingEnrollmentRecord(
            identifier, net.authority.identifier.digest, text, address, clock.now()
        )
        node.wallet.store.put_pending(record)
        opened: list[object] = []
        channel_to = agent.channel_to

        async def counting(route: object, **options: object) -> object:
            opened.append(route)
            return await channel_to(route, **options)  # type: ignore[arg-type]

        agent.channel_to = counting  # type: ignore[assignment,method-assign]
        clock.advance(RESUME_AFTER + MAINTENANCE_SECONDS)
        with caplog.at_level(logging.WARNING, logger="troth.node"):
            await agent.maintain()
        assert node.wallet.pending_enrollments("agent") == []
        assert opened == []
        assert any("dropped" in r.getMessage() for r in caplog.records)

    run_memnet(test, tmp_path)
