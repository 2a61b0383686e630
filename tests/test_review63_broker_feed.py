"""Review 63 (lead), broker: the broker's feed hook skipped a feed of the count it had last
revoked for, though with another head: a store restored one entry back, then grown again by
another revocation to the same count (review 63w2, relay 1, fixed the relay's and the trust's
comparison; the broker's `_revoke_for_feed` counted only). The leases the new revocation names
were left to the next sweep. It now compares count and head."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from troth.identity import Identifier
from troth.node.services.broker import BrokerService


class _Broker:
    def __init__(self) -> None:
        self.fed: list[bytes] = []

    def revoke_for_feed(self, feed: Any, *, now: int) -> list[bytes]:
        self.fed.append(feed.head)
        return []


def test_a_feed_of_the_same_count_with_another_head_is_revoked_for() -> None:
    broker = _Broker()

    async def run(call: Callable[[], Any]) -> Any:
        return call()

    service = SimpleNamespace(
        _feed_counts={},
        _failed_feeds={},
        broker=broker,
        _run=run,
        clock=SimpleNamespace(now=lambda: 1),
    )
    authority = Identifier(b"\x01" * 32)
    first = SimpleNamespace(authority=authority, count=5, head=b"a" * 32)
    regrown = SimpleNamespace(authority=authority, count=5, head=b"b" * 32)

    async def main() -> None:
        await BrokerService._revoke_for_feed(service, first)  # type: ignore[arg-type]
        await BrokerService._revoke_for_feed(service, first)  # type: ignore[arg-type]
        await BrokerService._revoke_for_feed(service, regrown)  # type: ignore[arg-type]

    asyncio.run(main())
    assert broker.fed == [b"a" * 32, b"b" * 32]  # the same feed once; the regrown one too
