"""Review 56q, chains: the word a node's trace log and its own verification take on a chain.

1. A node's log appends a record under a chain whose issuer history is presented from a
   checkpoint on the node's word (`TraceLog.issuers`: its stored copies and held feeds; the
   trace service's collector likewise verifies a member's chain with them): an issuer that
   rotated and whose authority's feed recorded it (a supersession) presents its history from
   that change, as a node does for its own identities once its authority's feed supersedes
   them. `troth trace verify` on the same node, its log or an export of it, judged the chains
   by the stored copies alone (`attested_by_store`, not the held feeds): the node refused its
   own log, `delegation chain does not verify (... checkpoint ...)`, a log of a hub written
   before the chain check (review 56f) included. It now judges them by the node's word, as
   the log took them.
2. A chain's issuer key is judged by the histories the chain carries: a credential signed by
   an issuer's key after the issuer's rotation retired it, carrying the history from before
   the rotation, was "signed" for the log's append and for `troth trace verify` on a node
   whose own rows hold that rotation (the node's own identity, the key copied before it
   rotated), while an agent's record key is refused there after its retirement. The log and
   a node's verification now judge each link's key by the node's rows too (`rows`: the change
   after the key's says when it retired), as they judge an agent's.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.member_chains import member_chain
from tests.support.traces import record_unchecked, under_chain
from troth.clock import FixedClock
from troth.credentials import CredentialChain, issue_credential
from troth.errors import TraceError, TraceFailure
from troth.node import init_node, open_node
from troth.trace import open_node_log
from troth.trace.recorder import TraceRecorder

YEAR = 365 * DAY


def superseded_issuer_chain(home: Path, now: int) -> None:
    """On node "hub" (which trusts authority Z and holds its feed): a record of its identity
    "agent" under a chain from issuer A, whose history is presented from its change 1, the
    change Z's feed names (A is Z's member, rotated once)."""
    with member_chain(home, now, stored=False) as (recorder, chain):
        assert recorder.record(under_chain(chain), chain=chain).index == 0  # on the feed's word


def test_chains1_a_node_verifies_the_chain_its_log_took_on_its_word(troth_home: Path) -> None:
    superseded_issuer_chain(troth_home, int(time.time()))
    run("trace", "verify", "--node", "hub")
    export = troth_home / "export.jsonl"
    run("trace", "export", "--format", "jsonl", "--out", str(export), "--node", "hub")
    run("trace", "verify", "--file", str(export), "--node", "hub")


def test_chains2_a_key_its_node_retired_signs_no_chain_after(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    init_node("hub", home=troth_home)
    clock = FixedClock(now)
    with open_node("hub", home=troth_home) as node, open_node_log(node, clock=clock) as log:
        node.identities.create(now=now - 1000, name="boss")
        agent = node.identities.create(now=now - 1000, name="agent")
        copied = node.identities.signer("boss", now=now - 900)  # a thief's copy of the key
        late = issue_credential(  # dated after the rotation below
            copied, subject=agent.identifier, attributes=SUPPORT, now=now - 100, ttl=DAY, depth=3
        )
        early = issue_credential(  # before it: a credential the rotation leaves standing
            copied, subject=agent.identifier, attributes=SUPPORT, now=now - 800, ttl=DAY, depth=3
        )
        node.identities.rotate("boss", now=now - 500)
        history = copied.identity.history
        chain = CredentialChain((late,), (history,)).encode()
        signer = node.identities.signer
        recorder = TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock)
        kept = CredentialChain((early,), (history,)).encode()
        assert recorder.record(under_chain(kept), chain=kept).index == 0
        with pytest.raises(TraceError) as caught:
            recorder.record(under_chain(chain), chain=chain)
        assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID
        assert "retired" in str(caught.value)
        # the log as one without the check wrote it: the node's verification refuses it
        record_unchecked(monkeypatch, recorder, chain)
    result = run("trace", "verify", "--node", "hub", code=1)
    assert "retired" in result.stderr
