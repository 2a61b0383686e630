"""Review 58e, budgets: a delegate spends its delegator's refresh budget.

1. The hosted authority charges every `enroll` and `refresh` request to its source's budget
   (review 56g, budgets 1): a member's delegates are charged to the member's own account (the
   member at the root of the chains the caller's channel shows). A delegate is no member: its
   own refresh requests are refused, but only after they were charged. So any delegate, however
   narrow its delegation (an agent handed one attribute for ten minutes), could send refresh
   requests at the budget's refill rate and keep its delegator from ever refreshing its own
   credential (RATE_LIMITED), until that credential expired: a delegation gave the delegate a
   power over its delegator's authority. Link revocations already keep the two apart (a
   delegate "cannot spend what its delegator needs to revoke it", `_delegates_of`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_attacks_review2 import throwaway_delegate
from troth.authority.client import refresh_request
from troth.errors import AuthorityFailure, RemoteError
from troth.limits import ENROLL_REQUESTS_BURST
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address

LIMITED = AuthorityFailure.RATE_LIMITED.value


async def refresh_as(net: MemNet, runtime: NodeRuntime, name: str) -> Any:
    """A `refresh` request of local identity `name` of `runtime`, over its own channel to the
    hub's authority (showing the chains `name` holds)."""
    authority = net.authority.identifier
    end = await runtime.channel_to(
        route(HUB), also_trust=frozenset({authority}), expect=authority, identity=name
    )
    request = refresh_request(runtime.node.identities, name, authority, now=net.clock.now())
    return await call(runtime.router, (end.enc, service_address("authority")), "refresh", request)


@pytest.mark.xfail(
    strict=True, reason="review 58e budgets 1: a delegate's requests spend its member's budget"
)
def test_a_delegate_cannot_spend_its_delegators_refresh_budget(tmp_path: Path) -> None:
    """m delegates to its agent; the agent sends refresh requests past the burst (each one
    refused: it is no member); m still refreshes its own credential."""

    async def test(net: MemNet) -> None:
        m = await net.member("m")
        throwaway_delegate(m, "agent", {"agents.team": "support"})
        for _ in range(ENROLL_REQUESTS_BURST + 1):
            with pytest.raises(RemoteError):
                await refresh_as(net, m, "agent")
        assert await refresh_as(net, m, "m") is not None

    run_memnet(test, tmp_path / "home", budget=60)
