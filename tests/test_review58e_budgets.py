"""Review 58e, budgets: a delegate spends its delegator's refresh budget.

1. The hosted authority charges every `enroll` and `refresh` request to its source's budget
   (review 56g, budgets 1): a member's delegates are charged to the member's own account (the
   member at the root of the chains the caller's channel shows). A delegate is no member: its
   own refresh requests are refused, but only after they were charged. So any delegate, however
   narrow its delegation (an agent handed one attribute for ten minutes), could send refresh
   requests at the budget's refill rate and keep its delegator from ever refreshing its own
   credential (RATE_LIMITED), until that credential expired: a delegation gave the delegate a
   power over its delegator's authority. Link revocations already keep the two apart (a
   delegate "cannot spend what its delegator needs to revoke it", `delegates_of`).
2. Only `enroll` and `refresh` are charged to a budget: `revoke` and `rotated`, open to any
   authenticated identity as well (an identity costs nothing), are not. A stranger could send
   revoke requests without end, each checked in full on the authority's storage worker (the
   request's signature and history, then every signature and issuer history of the chain it
   carries, up to MAX_DELEGATION_LINKS links: any member's chain will do, chains are shown on
   every channel, and a store transaction) before it is refused as not upstream: the cost
   review 56g, budgets 1 bounded for enrollments, many times over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_attacks_review2 import throwaway_delegate
from troth.authority.client import refresh_request, revoke_request, rotated_request
from troth.credentials import CredentialChain
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


async def ask(net: MemNet, runtime: NodeRuntime, method: str, request: bytes) -> Any:
    """`method` of the hub's authority service, asked by `runtime` over its own channel."""
    authority = net.authority.identifier
    end = await runtime.channel_to(route(HUB), also_trust=frozenset({authority}), expect=authority)
    return await call(runtime.router, (end.enc, service_address("authority")), method, request)


def test_a_strangers_revoke_requests_are_refused_past_a_budget(tmp_path: Path) -> None:
    """mallory, a stranger, sends revoke requests for a link of m's chain (shown on every
    channel m opens): past the burst each is refused as rate limited, unchecked."""

    async def test(net: MemNet) -> None:
        m = await net.member("m")
        chain = m.node.wallet.best("m", now=net.clock.now())
        link = CredentialChain.decode(chain).credentials[-1].hash
        mallory = await net.node("mallory")
        authority = net.authority.identifier
        for attempt in range(ENROLL_REQUESTS_BURST + 4):
            request = revoke_request(
                mallory.node.identities,
                "mallory",
                authority,
                credential_hash=link,
                chain=chain,
                reason="",
                now=net.clock.now(),
            )
            with pytest.raises(RemoteError) as refused:
                await ask(net, mallory, "revoke", request)
            if attempt >= ENROLL_REQUESTS_BURST:
                assert LIMITED in str(refused.value), (attempt, str(refused.value))

    run_memnet(test, tmp_path / "home", budget=60)


def test_a_strangers_rotated_announcements_are_refused_past_a_budget(tmp_path: Path) -> None:
    """mallory, a stranger, announces her history again and again: past the burst each
    announcement is refused as rate limited, unchecked."""

    async def test(net: MemNet) -> None:
        mallory = await net.node("mallory")
        authority = net.authority.identifier
        for attempt in range(ENROLL_REQUESTS_BURST + 4):
            now = net.clock.now()
            request = rotated_request(mallory.node.identities, "mallory", authority, now=now)
            try:
                await ask(net, mallory, "rotated", request)
                answer = "answered"
            except RemoteError as exc:
                answer = str(exc)
            if attempt >= ENROLL_REQUESTS_BURST:
                assert LIMITED in answer, (attempt, answer)

    run_memnet(test, tmp_path / "home", budget=60)
