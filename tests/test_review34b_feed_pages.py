"""Review 34b, feed pages 1: the authority service charges a feed page signed on request to
the caller's member account, shared by the member's delegates so that minting delegates buys
no more signings (docs/protocols.md, "Services": `feed [since]`). The account was the
smallest of the roots of every chain the caller presented (`min(member_accounts(peer))`),
another authority's chains included: a delegate of acme's member m that is also a member of
globex (a co-trusted authority, which mints members for free) paid from its own globex account
whenever its identifier sorted first, so each of m's delegates had a budget of its own, and
m, minting them, could spend the members' pool the hub's other members sync from. Since
review 58e, budgets 1, a member's delegates pay from one account they share (`delegates_of`
the member), never the member's own.

Was a strict xfail until the account is the smallest root of the caller's chains from this
authority only (`AuthorityService._payer`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.test_attacks_review2 import throwaway_delegate
from troth.credentials import Attributes
from troth.errors import RemoteError
from troth.limits import FEED_PAGE_SIGNS_PER_CALLER_BURST
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address

AUTHORITY = service_address("authority")
ENTRIES = 2 * FEED_PAGE_SIGNS_PER_CALLER_BURST + 4


async def page(node: NodeRuntime, since: int, identity: str | None = None) -> None:
    end = await node.channel_to(route(HUB), identity=identity)
    await call(node.router, (end.enc, AUTHORITY), "feed", [since])


def test_a_delegate_pays_its_delegators_account_whatever_else_it_holds(tmp_path: Path) -> None:
    """d is a member of globex (which the hub trusts too) and holds a delegation from m, a
    member of the hub's authority. m spends its account's burst of pages signed on request;
    then d's next page is refused busy as well."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        _, authority, _ = await globex_over_tcp(net)

        def globex_ticket() -> str:
            return str(
                authority.create_ticket(
                    creator=authority.identifier,
                    attributes=Attributes({"globex.team": "desk"}),
                    address="/tcp/globex:4000",
                    now=net.clock.now(),
                )
            )

        await hub.enroll(globex_ticket(), "hub")  # the hub trusts globex too
        d = await net.node("d")
        await d.enroll(globex_ticket(), "d")
        m = await net.member("m0")
        tries = 0
        while net.identifier(m).digest < net.identifier(d).digest:  # d's account sorts first
            tries += 1
            m = await net.member(f"m{tries}")
        chain = m.node.wallet.delegate(
            m.name,
            to=net.identifier(d),
            attributes=Attributes({"agents.team": "support"}),
            now=net.clock.now(),
            ttl=600,
            purpose="pages",
        )
        d.node.wallet.hold("d", chain, now=net.clock.now())
        await d.reload()  # d shows it from now on
        for _ in range(ENTRIES):
            net.authority.revoke_credential(os.urandom(32), now=net.clock.now())
        await hub.refresh_feeds()

        for since in range(FEED_PAGE_SIGNS_PER_CALLER_BURST):  # m spends its burst
            await page(m, since)
        with pytest.raises(RemoteError, match="busy"):
            await page(m, FEED_PAGE_SIGNS_PER_CALLER_BURST)
        # its delegates pay from the one account they share (review 58e, budgets 1), d too:
        # d spends it, and another delegate of m is refused (d paid from its own globex
        # account, m's delegates would each have one)
        for since in range(FEED_PAGE_SIGNS_PER_CALLER_BURST):
            await page(d, FEED_PAGE_SIGNS_PER_CALLER_BURST + since)
        throwaway_delegate(m, "agent", {"agents.team": "support"})
        with pytest.raises(RemoteError, match="busy"):
            await page(m, 2 * FEED_PAGE_SIGNS_PER_CALLER_BURST, identity="agent")

    run_memnet(test, tmp_path / "home", budget=90)
