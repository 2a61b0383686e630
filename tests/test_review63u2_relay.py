"""Review 63u2, relay: the relay service's feed hook (review 63u, relay 3).

relay 1 (low: CPU on the event loop): the hook decided every relay's owner again (`_recheck`:
up to 2 * MAX_RELAYS access decisions, on the loop) for every feed the node installed, the
same feed again included: every maintenance round's sync of each trusted authority, each
link (re)established to an authority's node (which then syncs its feed), each `feed.sync`
asked through the control socket, installs a feed that revokes nothing new. A revocation is
a feed with more entries than the one held (feeds only grow); the broker's hook re-checks
only then (`_feed_counts`), the relay's now does too. (A stale feed that came back, which
allows a refused owner again, is the maintenance round's, as before.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import HUB, MemNet, run_memnet
from troth.node.services.relay import RelayService


def test_a_feed_installed_again_decides_no_owner_again(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        relay = hub.host.services["relay"]
        assert isinstance(relay, RelayService)
        decided: list[str] = []
        decide = relay.decide
        assert decide is not None

        def counting(request: object) -> object:
            decided.append("create")
            return decide(request)  # type: ignore[arg-type]

        relay.decide = counting  # type: ignore[assignment]
        acme = net.authority.identifier
        feed = hub.trust.feeds[acme]
        for _ in range(100):  # the same feed, installed again (a round's sync, a link's)
            hub.trust.set_feed(acme, feed)
        await asyncio.sleep(0)
        assert len(decided) <= 1, len(decided)
        # a revocation (a feed with more entries) is still decided at once
        net.authority.revoke_identity(net.identifier(b), now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        await asyncio.sleep(0)
        assert relay.status()["b"]["state"] != "up"

    run_memnet(test, tmp_path / "home", budget=30)
