"""Review 30a, bundles: a bundle signer's history against a stored copy from a checkpoint
(docs/formats.md, "A stored copy from a checkpoint").

Desk trusts acme and globex. Globex names a made-up change 5 of acme's policy admin (its
`previous` names no change of hers: after a gap) in its feed and desk stores that copy at
first sight (globex connected as her with its own chain). Her bundles for acme are then
refused (bundles 1): `NodePolicies` gave the `BundleStore` the node's `observe` with no `Binds`,
so globex's copy binds her full history (SIGNER_INVALID, older than the stored copy) and globex
keeps acme's policy off desk. Acme, the root of the chain verified with the bundle, has
standing over her history.

Bundles 1 was a strict xfail until `NodePolicies` gave the `BundleStore` a `known_in`
(`verify_bundle(known_in=)`, told the bundle's authority) that judges a full history a copy
refuses again with the node's `Binds` (`Node.binds_over`), that authority having standing over
it: globex's copy is replaced once the bundle verified, and its changes recorded refuted.

A guard (bundles 2): when globex vouched for her here under her change 0, its copy still binds
her change 0 (a thief's stale backup of her keys signing a bundle is refused).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gates import T, make_world
from tests.test_review30a_enrollment import stores_globex_copy
from tests.test_trust_scope import make_two
from troth.errors import PolicyError, PolicyFailure
from troth.node import init_node, open_node
from troth.node.services.node_policies import NodePolicies
from troth.storage import SqliteVoucherStore


def test_a_gap_copy_does_not_keep_a_policy_admins_bundle_out(troth_home: Path) -> None:
    world = make_world()
    two = make_two()
    admin = world.admin.identifier
    init_node("desk")
    with open_node("desk") as node:
        stores_globex_copy(node, two, admin)
        feeds = {world.authority.identifier: world.feed, **two.feeds}
        policies = NodePolicies(node, feeds.get)
        policies.trust(frozenset({world.authority.identifier, two.globex.identifier}), now=T + 5)
        verified, new = policies.accept(world.bundle(by_admin=True), now=T + 5)
        assert new
        assert verified.body.signer == admin
        assert node.identities.stored_changes(admin) == 1  # her history, over globex's copy


def test_a_copy_whose_attester_has_standing_binds_a_signer(troth_home: Path) -> None:
    """Bundles 2 (a guard): globex vouched for her here under her change 0 (its chain verified
    with her full history once), then recorded her rotation (its copy): a bundle signed with
    her change 0 alone (a stale backup) is refused, and the copy stays."""
    world = make_world()
    two = make_two()
    admin = world.admin.identifier
    init_node("desk")
    with open_node("desk") as node:
        stores_globex_copy(node, two, admin)
        change0 = world.admin.identity.current_change_hash
        SqliteVoucherStore(node.db).vouch(
            admin.digest, two.globex.identifier.digest, T + 3600, admin.digest, (0, change0)
        )
        feeds = {world.authority.identifier: world.feed, **two.feeds}
        policies = NodePolicies(node, feeds.get)
        policies.trust(frozenset({world.authority.identifier, two.globex.identifier}), now=T + 5)
        with pytest.raises(PolicyError) as caught:
            policies.accept(world.bundle(by_admin=True), now=T + 5)
        assert caught.value.reason is PolicyFailure.SIGNER_INVALID
        assert "older than the stored copy" in str(caught.value)
        assert node.identities.stored_changes(admin) == 6
