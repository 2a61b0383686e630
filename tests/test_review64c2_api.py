"""Review 64c2: the Python API as a new user meets it, second pass (docs/python.md: the async
`RunningNode` API, `Node.policies`, `Node.secrets`, `Node.traces`), each misuse attacked.

api 1: a lease that ended by expiring (the broker's sweep moved it to REVOKED, its end reason
EXPIRED) was refused on `renew` (and on any use through the holder's lease id) with
`SecretError` `REVOKED` "lease ...": the guide names `REVOKED` "for a revoked lease", and a
holder told its lease was revoked looks for an operator's revocation or a revoked credential
that never happened, when it need only lease again. Fixed (`troth.secrets.book`): a lease that
ended by expiring is refused `EXPIRED`, as one not swept yet already was.
"""

from __future__ import annotations

from pathlib import Path

import troth
from tests.support.brokers import broker_of, client, run_broker
from tests.support.nodes import MemNet


def test_a_renewal_of_a_lease_swept_as_expired_is_refused_expired_not_revoked(
    tmp_path: Path,
) -> None:
    seen: list[tuple[troth.SecretFailure, troth.SecretFailure]] = []

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        agent = await net.member("agent")
        held = await client(agent).issue("payments", scope=("refunds",), ttl=60)
        net.clock.advance(120)  # past its expiry
        try:
            await client(agent).renew(held.lease_id)
        except troth.SecretError as exc:  # not swept yet: its expiry read
            before = exc.reason
        await broker_of(net.hub).sweep()  # the broker ends it: REVOKED, end reason EXPIRED
        try:
            await client(agent).renew(held.lease_id)
        except troth.SecretError as exc:
            seen.append((before, exc.reason))

    run_broker(test, tmp_path)
    assert seen == [(troth.SecretFailure.EXPIRED, troth.SecretFailure.EXPIRED)]
