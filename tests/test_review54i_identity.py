"""Review 54i: identity change histories as peers see them (layer 1; docs/formats.md,
"Pre-rotation and stored histories"). Identity 1 was a strict xfail until its fix; identity 2
is one still (not fixed: its test says what a fix must keep)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.channels import T
from tests.support.cli import run, run_json
from tests.support.feeds import pages, superseded
from tests.support.histories import DAY
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_trust_scope import NOW as T_NOW
from tests.test_trust_scope import make_two
from troth.channel import AnyAuthenticatedIdentity, verify_peer
from troth.clock import FixedClock
from troth.errors import ChannelError, IdentityError, IdentityFailure
from troth.identity import VerifiedIdentity, rotate_identity, verify_history
from troth.node import init_node, open_node
from troth.node.trust import NodeTrust
from troth.trace.export import export_jsonl


def _export_after_rotation(tmp_path: Path) -> tuple[Held, bytes, Path]:
    """An agent's record at change 0, a rotation, a record at change 1, in a log: the agent,
    its history before the rotation (a stolen backup's), the log's JSONL export."""
    agent = Held()
    clock = FixedClock(NOW)
    log = open_log(tmp_path / "trace.db", clock)
    recorder(log, agent, clock).record(tool_call())
    before = agent.identity.history
    agent.rotate(NOW + 100)
    clock.advance(200)
    recorder(log, agent, clock).record(tool_call())
    out = io.StringIO()
    export_jsonl(log, out)
    log.close()
    export = tmp_path / "export.jsonl"
    export.write_text(out.getvalue())
    return agent, before, export


def test_a_rotation_a_trace_verification_saw_refuses_the_stale_backup_after(
    tmp_path: Path, troth_home: Path
) -> None:
    """Identity 1: `troth trace verify --file EXPORT --node N` verified the agent's rotation
    (the export's newest history, extending N's stored copy) and stored nothing
    (`check_no_fork`), so N imported (and admitted at a handshake) the stale backup, the
    retired key, right after: the promise of review 50g (verify 1) for `troth identity verify
    --node`, which stores a verified extension of a stored copy."""
    agent, before, export = _export_after_rotation(tmp_path)
    backup = tmp_path / "backup.history"
    backup.write_bytes(before)
    init_node("verifier")
    run("identity", "import", str(backup), "--node", "verifier")  # the node knows change 0
    answer = run_json("trace", "verify", "--file", str(export), "--node", "verifier")
    assert answer["verified"] is True
    with open_node("verifier") as node:
        assert node.identities.stored_changes(agent.identifier) == 2
        with pytest.raises(IdentityError) as caught:
            node.identities.observe(verify_history(before, now=NOW + 300))
        assert caught.value.reason is IdentityFailure.ROLLBACK


@pytest.mark.xfail(
    strict=True,
    reason="review 54i, identity 2 (not fixed): a fork a node stored first outranks the "
    "owner's authority's feed; she is refused there for good",
)
def test_her_authoritys_feed_outranks_a_fork_the_node_stored_first(troth_home: Path) -> None:
    """Identity 2 (open): a thief holding alice's whole backup (her key, the committed next
    key, her acme credential) rotates her change 0 its own way and connects to desk first:
    desk admits it (acme's chain, acme's feed naming nothing yet), stores the fork and records
    acme's voucher under it. Acme then names her real change 1 in its feed and desk holds it:
    desk refuses the thief (`superseded history`) and alice herself, with the same chain
    (`history forks from the stored copy`: `_known_by` judges a stored full copy as binding
    whatever the feed says), for good. A stateless verifier's memory lets the root's feed
    outrank a fork it saw first (review 40a, memory 3 and 4: docs/formats.md, "Pre-rotation
    and stored histories"); a node's store does not, so the thief locks her out of every node
    that saw its fork first. A fix must give that word only to an authority with standing over
    both histories (here acme: the root of her chain, and it vouched for the stored copy), never
    to a co-trusted authority that did not (review 41a, memory 1), and keep the replaced copy as
    fork evidence."""
    two = make_two()
    alice = two.alice.party

    def rotated(at: int) -> VerifiedIdentity:  # the same keys: the owner's, or the backup's
        return rotate_identity(
            two.vault, alice.identity, alice.primary, alice.next_primary, now=at, valid_for=DAY
        ).identity

    real, fork = rotated(T), rotated(T)
    assert real.current_change_hash != fork.current_change_hash  # another next-key commitment
    acme = two.acme.identifier
    init_node("desk")
    with open_node("desk") as node:
        node.wallet.trust(acme, f"node:{acme}", now=T)
        (empty,) = pages(two.acme, [], now=T, per_page=1)
        node.wallet.update_feed(empty, authority=acme, now=T_NOW)
        desk = NodeTrust(node, None)
        desk.reload(T_NOW)
        trust = desk.channel_trust(AnyAuthenticatedIdentity())
        chain = two.chain(two.acme)
        verify_peer(trust, fork, (chain,), T_NOW)  # the thief, first
        assert node.identities.store.get_history(fork.identifier.digest) == (fork.history, 2)
        entry = superseded(0, alice.identifier, acme, 2, real.current_change_hash, at=T_NOW)
        (page,) = pages(two.acme, [entry], now=T_NOW, per_page=1)
        node.wallet.update_feed(page, authority=acme, now=T_NOW)
        desk.reload(T_NOW)
        with pytest.raises(ChannelError) as caught:
            verify_peer(trust, fork, (chain,), T_NOW)
        assert "superseded history" in str(caught.value)
        assert verify_peer(trust, real, (chain,), T_NOW).identifier == alice.identifier
