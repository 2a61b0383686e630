"""Review 56y, chains 1 (review 56q, chains 2): a node refuses a chain link made after the
change that retired its issuer's key (`chain_signed.check_unretired`), judged by the time the
link names, which its signer chose. A thief of the key dates the credential before the
rotation and it is taken: at the log's append, by `troth trace verify` on the node, with no
bound (a record's time is bounded at append, 300 s; a credential's is not, nor is its window
judged against the record's time by a trace: ChainVerifier.verify's question), a credential
valid one second and expired years before the record included. Nothing the chain carries
tells it from an honest credential made before the rotation, which the rotation leaves
standing: the docs said the copy "signing after its rotation" was refused, not that one
dating its link before it is taken (seen failing as a strict xfail; docs/traces.md and
`check_unretired` now say it, and what answers a stolen issuer key: a revocation)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.traces import under_chain
from troth.clock import FixedClock
from troth.credentials import CredentialChain, issue_credential
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.trace import open_node_log
from troth.trace.recorder import TraceRecorder

DOCS = Path(__file__).resolve().parents[1] / "docs" / "traces.md"


@contextlib.contextmanager
def boss_and_agent(
    home: Path, now: int
) -> Iterator[tuple[Node, Identifier, Identifier, TraceRecorder]]:
    """Node "hub" at `home` with identities "boss" and "agent" (made at `now` - 1000) and a
    recorder of agent's records on its log at `now`: the node, boss, agent, the recorder."""
    init_node("hub", home=home)
    clock = FixedClock(now)
    with open_node("hub", home=home) as node, open_node_log(node, clock=clock) as log:
        boss = node.identities.create(now=now - 1000, name="boss").identifier
        agent = node.identities.create(now=now - 1000, name="agent").identifier
        signer = node.identities.signer
        recorder = TraceRecorder(log, lambda at: signer("agent", now=at), clock=clock)
        yield node, boss, agent, recorder


def test_chains1_a_thief_dating_its_link_before_the_rotation_is_taken_as_documented(
    troth_home: Path,
) -> None:
    now = int(time.time())
    with boss_and_agent(troth_home, now) as (node, _boss, agent, recorder):
        copied = node.identities.signer("boss", now=now - 900)  # a thief's copy of the key
        backdated = issue_credential(  # dated a second before the rotation, 1 s long: the
            # thief's bytes whenever it signs them (the vault deletes its own copy below)
            copied,
            subject=agent,
            attributes=SUPPORT,
            now=now - 501,
            ttl=1,
            depth=3,
        )
        node.identities.rotate("boss", now=now - 500)
        chain = CredentialChain((backdated,), (copied.identity.history,)).encode()
        assert recorder.record(under_chain(chain), chain=chain).index == 0  # taken
    run("trace", "verify", "--node", "hub")  # and verified: the residual
    text = " ".join(DOCS.read_text().split())
    assert "a link its signer dated before the rotation is taken" in text
