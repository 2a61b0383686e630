"""Enrollment in one process: a member node enrolls with an authority opened beside it (the
authority's `enroll` is the transport), as the attack and long-life tests set it up."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from troth import enrollment
from troth.authority import Authority
from troth.authority.client import authority_pin_of, ticket_vouches
from troth.authority.core import DEFAULT_TICKET_TTL
from troth.authority.tickets import Ticket
from troth.clock import Clock
from troth.credentials import Attributes
from troth.enrollment import Enrolled
from troth.identity import Identifier, verify_history
from troth.node import Node, init_node, open_node
from troth.storage import PendingEnrollmentRecord


def ticket_pin(ticket: Ticket | str, *, now: int) -> str:
    """The pin of `ticket`'s authority history (`IDENTIFIER:KEY`, its current key): for an
    authority's real ticket, what its operator reads out (`troth authority list`), which
    `--over-copy` needs (review 68l, enroll 1)."""
    parsed = ticket if isinstance(ticket, Ticket) else Ticket.parse(ticket)
    history = verify_history(parsed.authority_history, now=now, checkpoints=ticket_vouches)
    return authority_pin_of(history)


def enroll_in_process(
    member: Node,
    ref: str,
    authority: Authority,
    ticket: Ticket | str,
    clock: Clock,
    *,
    pin: str | None = None,
) -> Enrolled:
    """`troth.enrollment.enroll` of local identity `ref` of `member` with `authority`."""
    return enrollment.enroll(
        member.identities,
        member.wallet,
        ref,
        ticket,
        clock=clock,
        send=lambda request: authority.enroll(request, now=clock.now()).encode(),
        authority_pin=pin,
    )


@contextlib.contextmanager
def acme_and_agent(
    home: Path | None, now: int
) -> Iterator[tuple[Authority, Node, Identifier, Ticket]]:
    """New nodes acme (hosting authority acme) and agent (local identity `agent`), both open,
    and a one-use `node:acme` ticket of acme for team x: what the crash tests enroll with."""
    init_node("acme", home=home)
    init_node("agent", home=home)
    with open_node("acme", home=home) as acme, open_node("agent", home=home) as agent:
        authority = acme.create_authority("acme", now=now)
        member = agent.identities.create(now=now, name="agent").identifier
        yield authority, agent, member, acme_ticket(authority, now)


def acme_ticket(
    authority: Authority, now: int, *, uses: int = 1, ttl: int = DEFAULT_TICKET_TTL
) -> Ticket:
    """A `node:acme` ticket of `authority` for team x (`uses` uses, valid `ttl` seconds)."""
    return authority.create_ticket(
        creator=authority.identifier,
        attributes=Attributes({"team.name": "x"}),
        address="node:acme",
        now=now,
        uses=uses,
        ttl=ttl,
    )


class AnswerLost(Exception):
    """The authority committed the enrollment; its answer never reached the holder."""


def enroll_answer_lost(
    member: Node, ref: str, authority: Authority, ticket: Ticket | str, clock: Clock
) -> None:
    """`enroll_in_process` whose answer is lost once the authority committed it (what a crash at
    `authority.enroll.after-commit` or `holder.enroll.before-commit` leaves: a pending record at
    the holder, a redemption at the authority)."""

    def lost(request: bytes) -> bytes:
        authority.enroll(request, now=clock.now())
        raise AnswerLost

    try:
        enrollment.enroll(member.identities, member.wallet, ref, ticket, clock=clock, send=lost)
    except AnswerLost:
        return
    raise AssertionError("the enrollment's answer was not lost")


def resume_in_process(
    member: Node, pending: PendingEnrollmentRecord, authority: Authority, clock: Clock
) -> Enrolled:
    """`troth.enrollment.resume` of `pending` with `authority` (its `enroll` the transport)."""
    return enrollment.resume(
        member.identities,
        member.wallet,
        pending,
        clock=clock,
        send=lambda request: authority.enroll(request, now=clock.now()).encode(),
    )
