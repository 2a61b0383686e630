"""Review 60b: attacks on trace.db's `issued_links` (`troth.trace.issued_links`, read by
`troth.trace.signed_until` to date a node's rotation of an identity it holds) that did not
work (tests/test_review60b_rotation.py has the finding).

- a row planted for the identity that does not verify (a real link's body under another's
  signature, dated far ahead; a change past the identity's; no CBOR; text) neither dates the
  rotation nor hides the identity's real newest link: the search of the kept chains answers;
- a member's chain "by" the identity, dated ahead but signed by the member's key, is refused
  at append and notes nothing: the rotation is dated at the clock;
- a log kept before the table (no table, no mark) is searched as before.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.traces import node_trace_db, under_chain
from tests.test_review59b_trace import _changes
from tests.test_review60b_rotation import (
    as_before_the_table,
    boss_link,
    flood,
    issued_rows,
    rotate,
    start,
)
from troth.credentials import CredentialChain, issue_credential
from troth.credentials.format import SignedCredential
from troth.encoding import cbor
from troth.errors import TraceError, TraceFailure
from troth.node import open_node, troth_home
from troth.trace import TraceRecorder, open_node_log


def _plant(change: object, link: object) -> None:
    """boss's row of `issued_links` replaced by (`change`, `link`), dated far ahead."""
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        (issuer,) = conn.execute("SELECT issuer FROM issued_links WHERE made_at > 0").fetchone()
        conn.execute(
            "UPDATE issued_links SET change = ?, made_at = ?, link = ? WHERE issuer = ?",
            (change, 2**40, link, issuer),
        )


def _forged(at: int) -> bytes:
    """A link of boss dated `at` (its body real) signed by agent's key, as carried."""
    with open_node("default", home=troth_home()) as node:
        boss = node.identities.signer("boss", now=at)
        agent = node.identities.signer("agent", now=at)
        link = issue_credential(
            boss, subject=agent.identity.identifier, attributes=SUPPORT, now=at, ttl=DAY, depth=3
        )
        return SignedCredential(link.body, agent.sign(link.body), agent.attestation).encode()


@pytest.mark.parametrize("row", ["forged", "change", "cbor", "text"])
def test_a_planted_row_neither_dates_nor_hides_the_real_link(row: str) -> None:
    clock = start()
    now = clock.now()
    boss_link(now + 200, clock=clock)
    planted = {
        "forged": (0, _forged(now + 290)),
        "change": (7, _forged(now + 290)),
        "cbor": (0, b"\xff" * 40),
        "text": (0, "not a link"),
    }
    _plant(*planted[row])
    rotate(now)
    assert _changes("boss", now)[1:] == [now + 200]


def test_a_members_forged_link_dated_ahead_is_refused_and_notes_nothing() -> None:
    clock = start()
    now = clock.now()
    flood(1, clock=clock)  # the table holds the member's link
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        boss = node.identities.get("boss", now=now).identity
        forged = SignedCredential.from_cbor(cbor.decode(_forged(now + 290)))
        chain = CredentialChain((forged,), (boss.history,)).encode()
        signer = node.identities.signer
        recorder = TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock)
        with pytest.raises(TraceError) as refused:
            recorder.record(under_chain(chain), chain=chain)
    assert refused.value.reason is TraceFailure.CREDENTIAL_INVALID
    assert [row[1:] for row in issued_rows()] == [(0, now)]  # the member's alone
    rotate(now)
    assert _changes("boss", now)[1:] == [now]


def test_a_log_kept_before_the_table_is_searched_as_before() -> None:
    clock = start()
    now = clock.now()
    boss_link(now + 200, clock=clock)
    as_before_the_table()
    rotate(now)
    assert _changes("boss", now)[1:] == [now + 200]
