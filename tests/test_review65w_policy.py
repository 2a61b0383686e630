"""Review 65w, policy distribution between nodes.

policy 1: a member's node restored from a backup holds its bundle back (review 54p, rollback
1: it "hands it to no one"), yet at its start it passed every active bundle on to its
authority's node (`PolicyService.started` -> `upstream`), the held-back one included. On the
authority's node a member's push of the same bytes confirms a held-back bundle (review 54t,
policy 1), so a member's node and its authority's node both restored from copies holding the
same older bundle confirmed each other: the authority's node took the member's stale copy as
confirmation, and the member's next pull was answered with it, so both decided by the older
bundle again (docs/policy.md, "A restored node.db": "deny until one of them is given it
again"). Now a held-back bundle is passed on to no one, upstream included.

policy 2: an authority's node whose bundle is out of force for good (its signer's history
superseded: a thief's top-revision bundle after the authority rotated) asked back no member
for a replacement: `_asks_above` compared revisions only, and a member holding the
replacement (installed on its node while the authority's node was unreachable: its push
upstream failed, and is not tried again) names a lower revision than the thief's. The
authority's node kept the thief's bundle, denying every call, and answered null to every
member holding it, so the fleet denied until the replacement was installed on it by hand
(or that member restarted). Now a requester naming any bundle in force (revision above 0) is
asked back when the held one is out of force for good; its answer is judged as any bundle
(`BundleStore.accept`: issued since the held one, or refused).

policy 3: a push waiting for a place (MAX_POLICY_PUSHES) to a subscriber whose channel closed
meanwhile ended, once it ran, whatever subscription the key then named: the subscriber's new
one, made on its new channel after the maintenance round forgot the old, was dropped, and the
next bundle was not pushed to it (a round late). Now a push ends its own subscription only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_gates_distribution import bundle, install_on_hub, revision_of, until
from tests.test_review54p_rollback import _restart_held_back
from troth import limits
from troth.node.services.policy import PolicyService


def test_a_held_back_bundle_is_not_passed_on_to_its_authoritys_node_held_back_too(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        hub.policies.accept(bundle(net, 1), now=net.clock.now())
        b = await net.member("agent-b")
        await b.maintain()
        await b.stop()
        await hub.stop()
        hub_again = _restart_held_back(net, hub, "hub")
        await hub_again.start(("hub", 4000))
        assert hub_again.policies.held_back(authority)
        b_again = _restart_held_back(net, b, "host-agent-b")
        await b_again.start()
        service = b_again.host.services["policy"]
        assert isinstance(service, PolicyService)
        await service.started()  # as at the start (its pull, then its upstream pushes)
        await asyncio.gather(*list(service._tasks), return_exceptions=True)
        await b_again.maintain()
        assert hub_again.policies.held_back(authority)  # no one knows better: still in doubt
        assert b_again.policies.held_back(authority)

    run_memnet(test, tmp_path)


def test_an_authority_node_out_of_force_for_good_asks_a_member_back_for_the_replacement(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        top = limits.MAX_POLICY_REVISION
        b = await net.member("agent-b")
        c = await net.member("agent-c")
        stolen = bundle(net, top)
        await install_on_hub(net, stolen)
        await b.maintain()
        await c.maintain()
        assert revision_of(c, authority) == top
        hub.node.identities.rotate(net.authority.config.name, now=net.clock.now())
        await hub.reload()
        await b.refresh_feeds()
        net.clock.advance(61)
        replacement = bundle(net, 2)  # installed on b only: its push upstream failed
        await b.worker.run(b.policies.accept, replacement, now=net.clock.now())
        await b.maintain()  # names revision 2: the hub's thief's bundle is out of force
        await until(lambda: revision_of(hub, authority) == 2, timeout=3)
        await c.maintain()
        assert revision_of(c, authority) == 2

    run_memnet(test, tmp_path)


def test_a_push_to_a_gone_channel_does_not_end_the_subscription_made_since(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        service = hub.host.services["policy"]
        assert isinstance(service, PolicyService)
        b = await net.member("agent-b")
        await b.maintain()  # subscribes
        key = (net.identifier(b), authority)
        old = service.subscriptions[key]
        for _ in range(limits.MAX_POLICY_PUSHES):  # every push place taken
            await service._pushing.acquire()
        verified, _ = await hub.worker.run(hub.policies.accept, bundle(net, 1), now=net.clock.now())
        service.distribute(verified)  # its push waits for a place
        assert old.pushing
        old.channel = "gone"  # its channel closed
        await service.maintain(net.clock.now())  # forgets it
        assert key not in service.subscriptions
        await b.maintain()  # pulls revision 1 and subscribes again, on its open channel
        assert service.subscriptions[key] is not old
        for _ in range(limits.MAX_POLICY_PUSHES):
            service._pushing.release()
        await asyncio.gather(*list(service._tasks), return_exceptions=True)
        assert key in service.subscriptions  # the old push found its channel gone: itself ended

    run_memnet(test, tmp_path)
