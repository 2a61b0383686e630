"""Review 63w2, relay: review of 63u2's `_feed_grew` (re-decide the owners only when an
authority's feed grew).

1. (low: a revoked owner kept its relay until a forced refresh) The hosted authority's store
   rolled back one entry (a restore under the running hub) and then grown by another
   revocation to the same count: the hub's `refresh_hosted` compared counts only, so it did
   not read the feed again (the member revoked on the new line stayed admitted), and the
   relay's hook, counting too, would not have decided its owner again had it been read.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from troth.node.services.relay import RelayService
from troth.storage.sqlite_authority import SqliteAuthorityStore


def test_relay1_a_feed_rolled_back_and_regrown_to_its_count_decides_again(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        a = await net.member("a")
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        relay = hub.host.services["relay"]
        assert isinstance(relay, RelayService)
        authority = net.authority
        authority.revoke_identity(net.identifier(a), now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        await asyncio.sleep(0)
        held = hub.trust.feeds[authority.identifier]
        assert relay.status()["b"]["state"] == "up"
        store = authority.store
        assert isinstance(store, SqliteAuthorityStore)
        with store.transaction():  # restored: a's revocation gone
            store._db.execute("DELETE FROM revocations WHERE seq = ?", (held.count - 1,))
        authority.revoke_identity(net.identifier(b), now=net.clock.now())
        assert store.revocation_tip()[0] == held.count
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        await asyncio.sleep(0)
        now = hub.trust.feeds[authority.identifier]
        assert now.identity_revoked(net.identifier(b).digest)
        assert relay.status()["b"]["state"] != "up"

    run_memnet(test, tmp_path / "home", budget=30)
