"""Enrollment in one process: a member node enrolls with an authority opened beside it (the
authority's `enroll` is the transport), as the attack and long-life tests set it up."""

from __future__ import annotations

from troth import enrollment
from troth.authority import Authority
from troth.authority.tickets import Ticket
from troth.clock import Clock
from troth.enrollment import Enrolled
from troth.node import Node


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
