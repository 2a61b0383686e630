"""Review 52c, notices 1 (closed by review 53h, notices 1: tests/test_review53h_notices.py): a
source is a connection at the node before, so one party holding many connections there was many
sources. Eight of them spending their shares as they refill took a connection's whole total
(NOTICE_CONNECTION_INTERVAL: eight sources' rate), and sixteen filled its kept sources
(MAX_NOTICE_SOURCES, none refilled): another sender's source then got no notice, its calls
waiting out their timeout (troth.node.notice_budgets). The node before (a relay) names each
connection it accepted by its peer's host (`/worker/tcp-h<tag>-<random>`), and the budgets now
count one host's connections as one source."""

from __future__ import annotations

import os

from troth import limits
from troth.node.notice_budgets import NoticeBudgets
from troth.routing import Address

ONE = Address("worker", "tcp-one")


def test_a_party_with_many_connections_cannot_starve_another_source() -> None:
    budgets = NoticeBudgets()
    # the party's connections at the relay, from one host, as the relay names them
    party = [
        Address("worker", f"tcp-h0badc0de-{os.urandom(8).hex()}")
        for _ in range(limits.MAX_NOTICE_SOURCES)
    ]
    other = Address("worker", f"tcp-h600dcafe-{os.urandom(8).hex()}")
    got = 0
    step = limits.NOTICE_CONNECTION_INTERVAL
    for tick in range(int(10 / step)):  # ten seconds: a call's timeout
        now = tick * step
        for source in party:  # the party spends every notice its shares allow, first
            while budgets.take(ONE, source, now):
                pass
        if tick % int(1 / step) == 0:  # the other sender: one notice a second
            got += budgets.take(ONE, other, now)
    assert got
