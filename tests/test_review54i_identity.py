"""Review 54i: identity change histories as peers see them (layer 1; docs/formats.md,
"Pre-rotation and stored histories"). Each was a strict xfail until its fix."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.channels import T
from tests.support.cli import run, run_json
from tests.support.feeds import pages, superseded
from tests.support.histories import DAY
from tests.support.parties import Party
from tests.support.traces import NOW, Held, open_log, recorder, tool_call
from tests.test_trust_scope import NOW as T_NOW
from tests.test_trust_scope import Two, make_two
from troth.channel import AnyAuthenticatedIdentity, ChannelTrust, verify_peer
from troth.clock import FixedClock
from troth.errors import ChannelError, IdentityError, IdentityFailure
from troth.identity import VerifiedIdentity, rotate_identity, verify_history
from troth.node import Node, init_node, open_node
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


def _forked(two: Two) -> tuple[VerifiedIdentity, VerifiedIdentity]:
    """(alice's real rotation, a thief's fork of it): the same keys (the owner's, or her
    whole backup's), another next-key commitment."""
    alice = two.alice.party

    def rotated() -> VerifiedIdentity:
        return rotate_identity(
            two.vault, alice.identity, alice.primary, alice.next_primary, now=T, valid_for=DAY
        ).identity

    real, fork = rotated(), rotated()
    assert real.current_change_hash != fork.current_change_hash
    return real, fork


def _desk(node: Node, two: Two, *authorities: Party) -> tuple[NodeTrust, ChannelTrust]:
    """Desk trusting `authorities` (their feeds held, empty): its trust and a channel's."""
    for authority in authorities:
        node.wallet.trust(authority.identifier, f"node:{authority.identifier}", now=T)
        (empty,) = pages(authority, [], now=T, per_page=1)
        node.wallet.update_feed(empty, authority=authority.identifier, now=T_NOW)
    desk = NodeTrust(node, None)
    desk.reload(T_NOW)
    return desk, desk.channel_trust(AnyAuthenticatedIdentity())


def _names(node: Node, desk: NodeTrust, authority: Party, change: VerifiedIdentity) -> None:
    """`authority`'s feed, held by desk, names `change`'s newest change (a supersession)."""
    entry = superseded(
        0,
        change.identifier,
        authority.identifier,
        change.change_count,
        change.current_change_hash,
        at=T_NOW,
    )
    (page,) = pages(authority, [entry], now=T_NOW, per_page=1)
    node.wallet.update_feed(page, authority=authority.identifier, now=T_NOW)
    desk.reload(T_NOW)


def _refused(trust: ChannelTrust, who: VerifiedIdentity, chain: bytes) -> str:
    with pytest.raises(ChannelError) as caught:
        verify_peer(trust, who, (chain,), T_NOW)
    return str(caught.value)


def test_her_authoritys_feed_outranks_a_fork_the_node_stored_first(troth_home: Path) -> None:
    """Identity 2: a thief holding alice's whole backup (her key, the committed next key, her
    acme credential) rotates her change 0 its own way and connects to desk first: desk admits
    it (acme's chain, acme's feed naming nothing yet), stores the fork and records acme's
    voucher. Acme then names her real change 1 in its feed and desk holds it: desk refused the
    thief (`superseded history`) and alice herself, with the same chain (`history forks from
    the stored copy`: a stored full copy bound every history, whatever the feed said), for
    good. A stateless verifier's memory lets the root's feed outrank a fork it saw first
    (review 40a, memory 3 and 4); a node's store did not, so the thief locked her out of every
    node that saw its fork first. Now the word of the authorities with standing over both
    (`feed_outranks`: every authority that vouched for her here is the root of a chain she
    shows, and its feed names her change) replaces the copy, kept as fork evidence; the thief
    stays refused, after a restart too."""
    two = make_two()
    real, fork = _forked(two)
    init_node("desk")
    with open_node("desk") as node:
        desk, trust = _desk(node, two, two.acme)
        chain = two.chain(two.acme)
        verify_peer(trust, fork, (chain,), T_NOW)  # the thief, first
        assert node.identities.store.get_history(fork.identifier.digest) == (fork.history, 2)
        _names(node, desk, two.acme, real)
        assert "superseded history" in _refused(trust, fork, chain)
        assert verify_peer(trust, real, (chain,), T_NOW).identifier == real.identifier
        assert node.identities.store.get_history(real.identifier.digest) == (real.history, 2)
        kept = {(k.index, k.change_hash) for k in node.identities.forks(real.identifier)}
        assert (1, fork.current_change_hash) in kept  # (and hers, refused at first)
        assert "history forks from the stored copy" in _refused(trust, fork, chain)
    with open_node("desk") as node:  # a restart
        desk = NodeTrust(node, None)
        desk.reload(T_NOW)
        trust = desk.channel_trust(AnyAuthenticatedIdentity())
        assert "history forks from the stored copy" in _refused(trust, fork, chain)
        assert verify_peer(trust, real, (chain,), T_NOW).identifier == real.identifier


def test_a_co_trusted_authoritys_feed_does_not_outrank_her_copy(troth_home: Path) -> None:
    """Identity 2's limit: globex (co-trusted, which never vouched for alice here) names the
    thief's fork in its feed and the thief shows globex's chain: her copy, which acme's chain
    stored, stands (globex's word counts for its own chains only: review 23a, 41a memory 1).
    Nor does acme's word alone replace a copy globex vouched for too (several authorities'
    word: none replaces it)."""
    two = make_two()
    real, fork = _forked(two)
    init_node("desk")
    with open_node("desk") as node:
        desk, trust = _desk(node, two, two.acme, two.globex)
        acme, globex = two.chain(two.acme), two.chain(two.globex)
        verify_peer(trust, real, (acme,), T_NOW)  # alice, with acme's chain
        _names(node, desk, two.globex, fork)
        assert "history forks from the stored copy" in _refused(trust, fork, globex)
        assert node.identities.store.get_history(real.identifier.digest) == (real.history, 2)
    init_node("desk2")
    with open_node("desk2") as node:
        desk, trust = _desk(node, two, two.acme, two.globex)
        verify_peer(trust, fork, (two.chain(two.acme), two.chain(two.globex)), T_NOW)
        _names(node, desk, two.acme, real)  # acme's word; globex, which vouched too, is silent
        assert "history forks from the stored copy" in _refused(trust, real, acme)
        assert node.identities.store.get_history(fork.identifier.digest) == (fork.history, 2)
