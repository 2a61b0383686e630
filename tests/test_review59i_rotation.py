"""Review 59i (adversarial review of review 59b's rotation dating, `troth.node.rotation`): a
node's rotation of an identity it holds is dated no earlier than that identity's newest record
(or, for the log identity, checkpoint) in the node's trace log.

1. What the identity signed that the log keeps is more than its records: a delegation chain
   kept "at log" holds links it issued, which `troth trace verify` judges against the node's
   rows too (review 56q, chains 2: `check_unretired`, a link made after the change that retired
   its key is CREDENTIAL_INVALID). A link dated ahead of the clock (a clock stepped back since,
   the case review 59b closed for records), then a rotation of its issuer dated at the clock,
   and every later verification of the node's log names the record under that chain, though
   the link was signed while its key was current. Fixed: `troth.trace.signed_until` also
   reads the newest link the identity issued of the chains the log keeps.
2. `rotate --compromised` takes its date from the log too: a record signed by the copied key
   (the thief's, pushed while it was current) dated 300 s ahead dates the compromised
   rotation 300 s ahead, and every verifier whose clock is behind the node's, by a second,
   refuses the new history as from the future (FUTURE_CHANGE) until its clock catches up:
   the authority's announcement, peers' channels. The key the thief holds stays the one
   those verifiers take for up to 300 s.
"""

from __future__ import annotations

from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.traces import under_chain
from tests.test_review59b_trace import _record
from troth import Node
from troth.clock import FixedClock, SystemClock
from troth.credentials import CredentialChain, issue_credential
from troth.identity import verify_history
from troth.limits import MAX_CLOCK_SKEW_SECONDS
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log


def test_rotation1_a_chain_link_dated_ahead_stays_signed_after_the_rotation() -> None:
    run("identity", "create", "boss")
    run("identity", "create", "agent")
    now = SystemClock().now()
    clock = FixedClock(now)
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        ahead = now + 250  # boss delegated while its clock was ahead (stepped back since)
        boss = node.identities.signer("boss", now=ahead)
        agent = node.identities.get("agent", now=now).identity
        link = issue_credential(
            boss, subject=agent.identifier, attributes=SUPPORT, now=ahead, ttl=DAY, depth=3
        )
        chain = CredentialChain((link,), (boss.identity.history,)).encode()
        signer = node.identities.signer
        recorder = TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock)
        assert recorder.record(under_chain(chain), chain=chain).index == 0
    with Node.open(home=troth_home(), clock=clock) as opened:
        opened.identities.rotate("boss")
    run("trace", "verify")  # exit 0: the record under boss's link, signed before its rotation


def test_rotation2_a_copied_keys_record_does_not_date_the_compromised_rotation() -> None:
    run("identity", "create", "support")
    now = SystemClock().now()
    # signed by the key the stolen backup holds (the thief's record, pushed while it was
    # current: the log cannot tell it from the node's own)
    _record("support", now + MAX_CLOCK_SKEW_SECONDS)
    with Node.open(home=troth_home(), clock=FixedClock(now)) as node:
        node.identities.rotate("support", compromised=True)
    with open_node("default", home=troth_home()) as node:
        history = node.identities.get("support", now=now).identity.history
    # an authority (a peer) whose clock is one second behind the node's: FUTURE_CHANGE
    verify_history(history, now=now - 1)
