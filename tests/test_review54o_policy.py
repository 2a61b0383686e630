"""Review 54o, policy 1: a node's asks back (review 54h, bundles 8) waited their turn among,
and then held, the places of its pushes (`MAX_POLICY_PUSHES`, 16), one per requesting
identity and authority.

A member mints delegate identities for free: sixteen of them, each sending one `get` naming a
revision above the authority node's and never answering the node's `get` back, held every
push place for the call's timeout (10 s), again at each `get`, so the node's pushes of a new
bundle to its subscribers, and its bundles passed on to their authorities' nodes, waited behind
them for as long as the member kept asking. Now the asks back have places of their own, and
one member (its delegates included: `member_accounts`) has one ask back in flight per
authority at a time.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from troth import limits
from troth.channel import ChannelState
from troth.identity import Identifier
from troth.node.access import PeerCaller
from troth.node.services import policy as policy_module
from troth.node.services.policy import PolicyService, _Subscription
from troth.routing import Address

AUTHORITY = Identifier(b"\x01" * 32)


def identifier(n: int) -> Identifier:
    return Identifier(n.to_bytes(4, "big") + b"\x02" * 28)


def caller(n: int, member: int) -> PeerCaller:
    """The peer `n` on channel `chan-n`, a delegate of member `member` (its chain's root)."""
    link = SimpleNamespace(subject=SimpleNamespace(digest=identifier(member).digest))
    peer: Any = SimpleNamespace(
        identifier=identifier(n), credentials=(SimpleNamespace(links=(link,)),)
    )
    return PeerCaller(peer, f"chan-{n}")


class Calls:
    """The node's calls: a `get` (an ask back) never answered, a `push` recorded."""

    def __init__(self) -> None:
        self.gets = 0
        self.pushes = 0
        self.never = asyncio.Event()

    async def __call__(self, router: Any, route: Any, method: str, arguments: Any) -> Any:
        if method == "get":
            self.gets += 1
            await self.never.wait()
        self.pushes += 1
        return {"accepted": True}


def service() -> PolicyService:
    policies: Any = SimpleNamespace(
        anchors=frozenset({AUTHORITY}),
        held=lambda authority: None,
        node=SimpleNamespace(name="hub"),
    )
    end = SimpleNamespace(
        channel=SimpleNamespace(state=ChannelState.OPEN), enc=Address("worker", "e")
    )
    found = PolicyService(
        policies,
        worker=Any,  # type: ignore[arg-type]
        router=Any,  # type: ignore[arg-type]
        routes=dict,
        hosted=lambda: None,
        channel_to=Any,  # type: ignore[arg-type]
        find_channel=lambda channel: end,
        clock=lambda: 1,
        standing=Any,  # type: ignore[arg-type]
    )
    patched: Any = found
    patched._asked = lambda authority, now: [str(authority), 0]
    patched._speaks_for = lambda peer, now: frozenset({AUTHORITY})
    return found


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def test_asks_back_never_answered_hold_back_no_push(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sixteen members' asks back, never answered: a new bundle is still pushed to a
    subscriber at once."""
    calls = Calls()
    monkeypatch.setattr(policy_module, "call", calls)

    async def test() -> None:
        node = service()
        for n in range(limits.MAX_POLICY_PUSHES):
            node._ask_back(caller(n, member=n), AUTHORITY)
        await settle()
        subscriber = caller(1000, member=1000)
        node.subscriptions[(subscriber.identifier, AUTHORITY)] = _Subscription(
            subscriber.channel, subscriber.peer
        )
        bundle: Any = SimpleNamespace(
            body=SimpleNamespace(authority=AUTHORITY), digest=b"new", data=b"bundle"
        )
        node.distribute(bundle)
        await settle()
        assert calls.pushes == 1
        await node.close()

    asyncio.run(test())


def test_a_members_delegates_have_one_ask_back_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty delegates of one member each name a higher revision: one `get` back is sent (the
    others' are not queued behind it either); another member's is."""
    calls = Calls()
    monkeypatch.setattr(policy_module, "call", calls)

    async def test() -> None:
        node = service()
        for n in range(40):
            node._ask_back(caller(n, member=7), AUTHORITY)
        node._ask_back(caller(99, member=8), AUTHORITY)
        await settle()
        assert calls.gets == 2
        assert len(node._tasks) == 2
        await node.close()

    asyncio.run(test())
