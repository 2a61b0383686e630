"""Review 60b (closing review 59o's "chain window flood", `troth.trace.signed_until`): a node's
rotation of an identity it holds is dated no earlier than the newest delegation link it issued
of a chain its trace log keeps (review 59i, rotation 1).

1. To bound the read (review 59m, rotation 1), only the newest MAX_ROTATION_CHAINS kept chains
   were searched for the identity's links. Any member of the log can push an identity's link
   out of that window by having that many chains of its own kept (each signed by itself
   alone); a rotation of the identity by a clock stepped back (NTP) since it issued the link
   was then dated at the clock, before the link, and every later `troth trace verify` named
   the record under the link's chain CREDENTIAL_INVALID.
"""

from __future__ import annotations

import pytest

from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.traces import under_chain
from tests.test_review59b_trace import _changes
from troth import Node
from troth.clock import FixedClock, SystemClock
from troth.credentials import CredentialChain, issue_credential
from troth.limits import MAX_ROTATION_CHAINS
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log


@pytest.mark.xfail(strict=True, reason="review 60b, rotation 1: the link left the window")
def test_rotation1_a_members_chains_do_not_push_the_link_out_of_the_dating() -> None:
    for name in ("boss", "agent", "member", "aide"):
        run("identity", "create", name)
    now = SystemClock().now()
    clock = FixedClock(now)
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        signer = node.identities.signer
        ahead = now + 250  # boss delegated while its clock was ahead (stepped back since)
        boss = signer("boss", now=ahead)
        agent = node.identities.get("agent", now=now).identity
        link = issue_credential(
            boss, subject=agent.identifier, attributes=SUPPORT, now=ahead, ttl=DAY, depth=3
        )
        chain = CredentialChain((link,), (boss.identity.history,)).encode()
        TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock).record(
            under_chain(chain), chain=chain
        )
        member = signer("member", now=now)
        aide = signer("aide", now=now)
        flooder = TraceRecorder(log, lambda at: aide, clock=clock)
        for second in range(MAX_ROTATION_CHAINS + 1):  # each chain new, the member's own
            own = issue_credential(
                member,
                subject=aide.identity.identifier,
                attributes=SUPPORT,
                now=now - second,
                ttl=DAY,
                depth=3,
            )
            kept = CredentialChain((own,), (member.identity.history,)).encode()
            flooder.record(under_chain(kept), chain=kept)
    with Node.open(home=troth_home(), clock=clock) as opened:
        opened.identities.rotate("boss")
    run("trace", "verify")  # exit 0: the record under boss's link, signed before its rotation
    assert _changes("boss", now)[1:] == [ahead]
