"""Review 55c, leaks 1: the text of a ticket no one redeemed showed in a `repr`.

`Ticket.__repr__` never shows the code ("never print the code by accident"), but the pending
enrollment record (`PendingEnrollmentRecord`) kept the whole ticket text in its dataclass
`repr`, and `Enrolled` carries the record it resumed or replaced. An enrollment interrupted
before its request reached the authority, then made with another ticket, returns
`Enrolled(replaced=PendingEnrollmentRecord(ticket='troth-ticket:...'))`: a ticket never
redeemed, as good as new for whoever reads a log line, a notebook cell or a test report that
shows the result. The control operation's `EnrollArgs` showed it the same way.

Was a strict xfail until both kept the ticket out of their `repr` (`field(repr=False)`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.enroll import acme_and_agent, enroll_in_process
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.enrollment import enroll
from troth.errors import RemoteError
from troth.node.control import EnrollArgs

NOW = 1_800_000_000


def test_an_enrollments_repr_shows_no_ticket(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _member, first):

        def unreachable(request: bytes) -> bytes:
            raise RemoteError("no route to the authority")

        with pytest.raises(RemoteError):
            enroll(agent.identities, agent.wallet, "agent", first, clock=clock, send=unreachable)
        second = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "y"}),
            address="node:acme",
            now=NOW,
        )
        enrolled = enroll_in_process(agent, "agent", authority, second, clock)
        assert enrolled.replaced is not None
        code = str(first).removeprefix("troth-ticket:")
        assert code not in repr(enrolled)
        assert code not in repr(enrolled.replaced)
        assert code not in repr(EnrollArgs(str(first)))
        # what the repr showed was a ticket as good as new
        agent.identities.create(now=NOW, name="reader")
        assert enroll_in_process(agent, "reader", authority, first, clock).identity == "reader"
