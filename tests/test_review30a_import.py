"""Review 30a, import: a trusted authority's full history against a co-trusted authority's copy
of it made up after a gap, outside a running node.

Desk trusts acme and globex. Globex names a made-up change 5 of acme's identifier (after a gap)
in its feed and desk stores that copy at first sight (globex connected as acme with its own
chain). A running node then takes acme's feed page over the copy (review 29a, feeds 1:
`CredentialWallet.feed_binds`, given by `NodeTrust`), but:

- import 1: `troth identity import` of acme's full history is refused (older than the stored
  copy): `import_history` judged it with no `Binds`, though acme, a trust anchor, has standing
  over its own history;
- import 2: the same feed page synced outside a running node (`troth feed sync`, an authority on
  the same machine: `sync_local_feed`, with no `NodeTrust` to set `feed_binds`) is refused:
  desk, not running, is stranded off acme's feed (stale feeds deny every acme chain) until a
  runtime syncs it.

Import 1 and 2 were strict xfails until `CredentialWallet.anchor_binds` (`binds_over`, set by
`open_node`: the node's rule read from its store, a trusted authority having standing over its
own history; None for any other identity) judged `troth identity import`
(`import_history(binds=)`) and a feed page when no `feed_binds` is set; import 4 (`troth
identity verify --node` calling that history invalid) was one until it judged it so too.

A guard (import 3): the full history of an identity that is not a trust anchor (alice's, or a
thief's stale backup of hers) imported by an operator is still bound by the copy (no chain is
verified with an import: a stranger's, docs/formats.md "A stored copy from a checkpoint").
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.cli import run
from tests.support.feeds import pages
from tests.test_review23a_checkpoints import forged_change
from tests.test_trust_scope import NOW, Two, make_two
from troth.identity import Identifier
from troth.node import Node, init_node, open_node


def desk_with_globex_copy(two: Two, identifier: Identifier) -> None:
    """Desk trusts acme and globex, holds globex's feed naming a made-up change 5 of
    `identifier` (after a gap) and stores that copy at first sight."""
    init_node("desk")
    with open_node("desk") as node:
        for authority in (two.acme.identifier, two.globex.identifier):
            node.wallet.trust(authority, f"node:{authority}", now=NOW)
        forged = forged_change(two, identifier, 5, os.urandom(32))
        node.wallet.update_feed(forged.page, authority=two.globex.identifier, now=NOW)
        checkpoints = node.wallet.checkpoints(now=NOW, max_staleness=10**6)
        node.identities.import_history(forged.identity.history, now=NOW, checkpoints=checkpoints)
        assert node.identities.stored_changes(identifier) == 6


def stored_changes(identifier: Identifier) -> int | None:
    node: Node
    with open_node("desk") as node:
        return node.identities.stored_changes(identifier)


def test_importing_an_anchors_history_replaces_a_gap_copy(troth_home: Path) -> None:
    two = make_two()
    acme = two.acme.identifier
    desk_with_globex_copy(two, acme)
    path = troth_home / "acme.history"
    path.write_bytes(two.acme.identity.history)
    result = run("identity", "import", str(path), "--node", "desk", code=0)
    assert str(acme) in result.output
    assert stored_changes(acme) == 1


def test_a_feed_synced_outside_a_running_node_replaces_a_gap_copy(troth_home: Path) -> None:
    two = make_two()
    acme = two.acme.identifier
    desk_with_globex_copy(two, acme)
    (acme_page,) = pages(two.acme, [], now=NOW, per_page=1)
    with open_node("desk") as node:
        assert node.wallet.update_feed(acme_page, authority=acme, now=NOW).authority == acme
        assert node.identities.stored_changes(acme) == 1


def test_an_import_of_a_members_history_is_still_bound(troth_home: Path) -> None:
    """Import 3 (a guard): alice is not a trust anchor: her change 0 imported is refused."""
    two = make_two()
    alice = two.alice.identifier
    desk_with_globex_copy(two, alice)
    path = troth_home / "alice.history"
    path.write_bytes(two.alice.party.identity.history)
    result = run("identity", "import", str(path), "--node", "desk", code=1)
    assert "older than the stored copy" in result.output
    assert stored_changes(alice) == 6


def test_verifying_an_anchors_history_at_a_node_agrees_with_import(troth_home: Path) -> None:
    two = make_two()
    acme = two.acme.identifier
    desk_with_globex_copy(two, acme)
    path = troth_home / "acme.history"
    path.write_bytes(two.acme.identity.history)
    result = run("identity", "verify", str(path), "--node", "desk", code=0)
    assert result.output.startswith("valid")
    # a valid history extending (here: replacing, as the import does) the stored copy is
    # stored by the check too (review 50g, verify 1: verifying stored nothing)
    assert stored_changes(acme) == 1
