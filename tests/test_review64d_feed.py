"""Review 64d, feed: review of 63u/63u2/63w2's feed hooks (NodeTrust.set_feed, the relay's
`_feed_grew`, the broker's `_revoke_for_feed`) and `Node.feed`.

1. (low: a revoked member kept being admitted, and its relay kept forwarding, until the feed
   outgrew its old count or the node restarted) The hosted authority's store restored two
   entries back (a restore under the running hub) and grown again by one other revocation:
   63w2, relay 1 took another line at the *same* count, but a shorter one was dropped whole.
   `refresh_hosted` read it (the head differs), but `NodeTrust.set_feed` refuses a feed with
   fewer entries than the one held (review 48c: a sync that ended late must not replace a
   newer one), so the hub's decisions kept the old line, without the new revocation; and the
   relay's hook skipped any feed of a lower count. The hosted authority's own store is the
   feed (what it serves and what `Node.feed` returns): `refresh_hosted` now installs its line
   whatever its count, and the relay decides its owners again for any other (count, head).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.backups import feed_gone_back
from tests.support.nodes import HUB, MemNet, run_memnet
from troth.node.services.relay import RelayService


def test_feed1_a_hosted_feed_restored_shorter_and_regrown_is_taken(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        c = await net.member("c")
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        relay = hub.host.services["relay"]
        assert isinstance(relay, RelayService)
        authority = net.authority
        authority.revoke_identity(net.identifier(a), now=net.clock.now())
        authority.revoke_identity(net.identifier(c), now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        await asyncio.sleep(0)
        held = hub.trust.feeds[authority.identifier]
        assert relay.status()["b"]["state"] == "up"
        # restored two entries back: a's and c's revocations gone
        store = feed_gone_back(authority, held.count - 2)
        authority.revoke_identity(net.identifier(b), now=net.clock.now())
        assert store.revocation_tip()[0] == held.count - 1
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        await asyncio.sleep(0)
        now = hub.trust.feeds[authority.identifier]
        assert now.identity_revoked(net.identifier(b).digest)
        assert relay.status()["b"]["state"] != "up"

    run_memnet(test, tmp_path / "home", budget=30)
