"""Review 34b, due 1: a node refreshes its credential from an authority when the newest chain it
holds from that authority expires within the margin (`needs_refresh`), any chain rooted there:
a delegation it holds from another member of that authority too. A member's delegation
expiring later than the node's own credential (its delegator refreshed later) kept the node
from refreshing its own: the node's membership credential expired, and it was left with the
delegation alone — narrower, maybe caveated, gone with its delegator's revocation.

Was a strict xfail until `needs_refresh` goes by the member credentials the authority issued
to the node directly (one-link chains), not by every chain rooted there.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from troth.credentials import Attributes
from troth.node.membership import REFRESH_MARGIN

TTL = 3600  # the hub authority's credential TTL


def test_a_delegation_held_does_not_hold_back_the_nodes_own_refresh(tmp_path: Path) -> None:
    """n enrolls; m enrolls half an hour later and delegates to n until its own credential
    expires. When n's own credential expires within the margin, n refreshes it."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        n = await net.member("n")
        net.clock.advance(TTL // 2)
        m = await net.member("m")
        now = net.clock.now()
        chain = m.node.wallet.delegate(
            "m",
            to=net.identifier(n),
            attributes=Attributes({"agents.team": "support"}),
            now=now,
            ttl=TTL - 60,
            purpose="a long task",
            caveats=('context.ticket == "4471"',),
        )
        n.node.wallet.hold("n", chain, now=now)
        net.clock.advance(TTL // 2 - REFRESH_MARGIN + 60)  # n's own expires within the margin
        await hub.refresh_feeds()
        await n.refresh_feeds()
        assert await n.refresh_credentials() == 1

    run_memnet(test, tmp_path / "home", budget=60)


def test_an_expired_member_credential_is_kept_to_be_refreshed(tmp_path: Path) -> None:
    """Control of due 1 with held 1: n's own credential expires while n is away; n then holds
    a delegation from m (same authority), which forgets n's expired chains from it but its
    newest member credential, so n still refreshes it."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        n = await net.member("n")
        net.clock.advance(TTL + 60)  # n's own credential expired
        m = await net.member("m")
        now = net.clock.now()
        chain = m.node.wallet.delegate(
            "m",
            to=net.identifier(n),
            attributes=Attributes({"agents.team": "support"}),
            now=now,
            ttl=600,
            purpose="a task",
        )
        n.node.wallet.hold("n", chain, now=now)
        assert len(n.node.wallet.held("n")) == 2  # the expired member credential is kept
        await hub.refresh_feeds()
        await n.refresh_feeds()
        assert await n.refresh_credentials() == 1

    run_memnet(test, tmp_path / "home", budget=60)
