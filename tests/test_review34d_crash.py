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


def test_a_node_without_the_policy_service_also_takes_up_a_stored_bundle(tmp_path: Path) -> None:
    """Review 34d, crash 1 (a node that does not serve `policy`: its node.json names other
    services). Its gates decide with the same table, and `policy.reload` activates it without
    the service; a missed reload must cost one round there too.

    Was a strict xfail until the runtime's maintenance activated the stored bundles when no
    policy service does."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        assert "policy" not in hub.host.services
        now = net.clock.now()
        authority = net.authority.identifier
        data = support_bundle(hub.node.identities.signer("hub", now=now), authority, now)
        install_bundle(net.home, "hub", data, clock=net.clock)
        assert hub.policies.held(authority) is None
        await hub.maintain()
        held = hub.policies.held(authority)
        assert held is not None
        assert held.bundle.body.revision == 1

    run_memnet(test, tmp_path, services=("echo", "sink", "relay", "authority"))
