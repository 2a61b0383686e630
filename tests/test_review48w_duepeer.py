"""Review 48w, duepeer 1 (review 48m's, left): while a link revocation's feed sync stands due
on a node (its process killed between the authority's commit and the node's sync, the
authority's node out of reach since), a chain a peer presents was judged by the feed the node
held, which predates the revocation: the node admitted the revoked link. Now its access
decisions (`NodeTrust.standing`, what a daemon's channel checks and the broker ask) drop the
chains of an authority whose feed is due a sync until it is synced (fail closed;
docs/credentials.md, "Revocation is real")."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.cli import run, run_json, troth_process
from tests.test_cli_credentials import delegate, world  # noqa: F401  (the fixture)
from tests.test_review48m_revcrash import _marks
from troth.channel import VerifiedPeer
from troth.errors import CredentialError
from troth.faults import CRASH_EXIT_CODE
from troth.identity import Identifier
from troth.node.node import Node, open_node
from troth.node.traces import tell_local_nodes
from troth.node.trust import NodeTrust


def _held_by_support(world: dict[str, str]) -> bytes:  # noqa: F811
    """d1 (customer to support), held by support: its chain bytes."""
    d1 = Path(world["dir"]) / "d1"
    delegate(world, "customer", "support", "d1", "orders.customer=4471")
    run("credential", "import", str(d1), "--as", "support")
    return d1.read_bytes()


def _revoke_killed(world: dict[str, str]) -> None:  # noqa: F811
    d1 = str(Path(world["dir"]) / "d1")
    link = run_json("credential", "show", d1)["chain"][-1]["id"]
    args = ("revoke", "link", link, "--chain", d1, "--as", "customer", "--authority", "acme")
    crashed = troth_process(*args, crash="authority.revoke.after-commit", check=False)
    assert crashed.returncode == CRASH_EXIT_CODE


def _presented(node: Node, trust: NodeTrust, chain: bytes, now: int) -> VerifiedPeer:
    """Support, presenting `chain` (verified at the handshake against the feed held now)."""
    support = node.identities.get("support", now=now).identity
    assert trust._handshakes is not None
    verified = trust._handshakes.verify(chain, presenter=support, feeds=trust.feeds, now=now)
    return VerifiedPeer(support, (verified,))


def test_a_peers_chain_of_an_authority_due_a_sync_is_refused(
    world: dict[str, str],  # noqa: F811
    troth_home: Path,
) -> None:
    """Killed after the authority's commit, the authority's node out of reach: the node's held
    feed predates the revocation, and support presents the revoked d1 to it (the handshake
    verifies it against that feed). The node's standing for support holds no credential of
    acme while the mark stands, saying why; once the authority is back and the feed synced, d1
    is refused as revoked and the mark is gone."""
    chain = _held_by_support(world)
    _revoke_killed(world)
    assert _marks(troth_home) == 1
    nodes = troth_home / "nodes"
    os.rename(nodes / "acme", nodes / "acme-away")
    acme = Identifier.parse(world["authority"])
    with open_node("default") as node:
        now = int(time.time())
        trust = NodeTrust(node, None)
        trust.reload(now)  # the sync fails: the mark stands
        assert _marks(troth_home) == 1
        assert trust.feeds[acme].count == 0  # the held feed predates the revocation
        standing = trust.standing(_presented(node, trust, chain, now), now)
        assert standing.credentials == ()
        assert any("due a sync" in reason for reason in standing.dropped), standing.dropped
    os.rename(nodes / "acme-away", nodes / "acme")
    with open_node("default") as node:
        now = int(time.time())
        trust = NodeTrust(node, None)
        trust.reload(now)  # synced: the mark goes, the feed holds the revocation
        assert _marks(troth_home) == 0
        assert trust.due == frozenset()
        assert trust.feeds[acme].count == 1
        with pytest.raises(CredentialError, match="revoked"):
            _presented(node, trust, chain, now)


def test_a_chain_of_an_authority_with_no_mark_is_judged_as_before(
    world: dict[str, str],  # noqa: F811
    troth_home: Path,
) -> None:
    """No mark stands: support's d1 keeps its standing (the no-mark path drops nothing), and a
    mark made meanwhile is read at the node's next feed refresh (`learn_held`)."""
    chain = _held_by_support(world)
    acme = Identifier.parse(world["authority"])
    with open_node("default") as node:
        now = int(time.time())
        trust = NodeTrust(node, None)
        trust.reload(now)
        assert trust.due == frozenset()
        peer = _presented(node, trust, chain, now)
        assert len(trust.standing(peer, now).credentials) == 1
        node.wallet.store.mark_sync_due(acme.digest, "node:acme", now)
        trust.learn_held()
        assert trust.due == frozenset({acme})
        assert trust.standing(peer, now).credentials == ()


def test_a_running_nodes_sync_of_a_local_feed_clears_the_marks_it_holds(
    world: dict[str, str],  # noqa: F811
    troth_home: Path,
) -> None:
    """A mark made while the node runs (a revocation killed after the authority's commit,
    the daemon not told): its next sync of the feed from the authority's node on this machine
    (control op `feed.sync`, as a maintenance round does) clears it, as a sync over a channel
    does; before, it stood (the running node, whose decisions now drop that authority's chains
    while a mark stands, would have refused them until it restarted)."""
    acme = Identifier.parse(world["authority"])
    run_json("node", "start", "default")
    try:
        with open_node("default") as node:
            node.wallet.store.mark_sync_due(acme.digest, "node:acme", int(time.time()))
        assert _marks(troth_home) == 1
        with open_node("acme") as hosting:
            tell_local_nodes(hosting, acme)
        assert _marks(troth_home) == 0
    finally:
        run("node", "stop", "default")
