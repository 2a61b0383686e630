"""Review 34d, crash: what a command killed half-way, or racing a node's start, leaves a running
node with."""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_mcp_channels import support_bundle
from troth.node.services.policy import install_bundle


def test_a_bundle_stored_without_telling_the_running_node_is_taken_up(tmp_path: Path) -> None:
    """Review 34d, crash 1. `troth policy push` stores the bundle in the node's table, then
    tells a running node to activate it (`policy.reload`). A push killed between the two (a
    SIGKILL, a closed terminal), or one that looked while the node was starting (no status
    file yet: "not running") while the node had already read its table, stored a bundle the
    running node never took up: `troth policy show` said it was in force while the node kept
    deciding under the previous one — a tightened policy (a permission withdrawn) never
    applied, until a restart. A hosted authority's node never pulls its own. Now the policy
    service activates what its table holds on each maintenance round, so a missed reload
    costs one round.

    Was a strict xfail until `PolicyService.maintain` activated the bundles stored since."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        now = net.clock.now()
        authority = net.authority.identifier
        data = support_bundle(hub.node.identities.signer("hub", now=now), authority, now)
        # the push, seeing no daemon (this runtime writes no status file), stores it only
        summary = install_bundle(net.home, "hub", data, clock=net.clock)
        assert (summary["revision"], summary["new"], summary["node_running"]) == (1, True, False)
        assert hub.policies.held(authority) is None  # not heard of yet
        await hub.maintain()
        held = hub.policies.held(authority)
        assert held is not None
        assert held.bundle.body.revision == 1

    run_memnet(test, tmp_path)
