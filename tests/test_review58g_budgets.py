"""Review 58g, budgets: who can spend the budget a member's rotation is announced from.

1. Since review 58e, budgets 2, a `rotated` request is charged to its source's budget like an
   enroll or refresh: a member's to the member's own account. A member rotates because its key
   was stolen; until the authority hears of the rotation, the thief holding that key opens
   channels as the member and its requests are the member's. Sending refresh requests at the
   budget's refill rate (any request: each is charged before it is checked), the thief kept
   the member's account empty, so the member's announcement of its rotation, the one step that
   ends the stolen key's standing with the authority and every verifier, was refused
   RATE_LIMITED for as long as the thief kept at it (before 58e a rotated request was free).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_review58e_budgets import LIMITED, ask, refresh_as
from troth.authority.client import rotated_request
from troth.errors import RemoteError
from troth.limits import ENROLL_REQUESTS_BURST


def test_a_thief_of_a_members_key_cannot_keep_its_rotation_unannounced(tmp_path: Path) -> None:
    """The thief (m's key, so m's requests) spends m's budget with refresh requests; m rotates
    and announces the rotation: the authority takes it."""

    async def test(net: MemNet) -> None:
        m = await net.member("m")
        for _ in range(ENROLL_REQUESTS_BURST):  # the thief's, signed with m's (stolen) key
            await refresh_as(net, m, "m")
        with pytest.raises(RemoteError, match=LIMITED):
            await refresh_as(net, m, "m")
        m.node.identities.rotate("m", now=net.clock.now())
        authority = net.authority.identifier
        request = rotated_request(m.node.identities, "m", authority, now=net.clock.now())
        seq = await ask(net, m, "rotated", request)
        assert isinstance(seq, int)
        rotated = m.node.identities.get("m", now=net.clock.now()).identity.identifier
        assert net.authority.store.latest_supersession(rotated.digest) is not None

    run_memnet(test, tmp_path / "home", budget=60)


def test_a_members_rotated_requests_under_one_history_are_still_charged(tmp_path: Path) -> None:
    """m (or a thief of its key) announces its unrotated history again and again: past the
    burst each announcement is refused as rate limited, unchecked."""

    async def test(net: MemNet) -> None:
        m = await net.member("m")
        authority = net.authority.identifier
        for attempt in range(ENROLL_REQUESTS_BURST + 1):
            request = rotated_request(m.node.identities, "m", authority, now=net.clock.now())
            if attempt < ENROLL_REQUESTS_BURST:
                await ask(net, m, "rotated", request)
                continue
            with pytest.raises(RemoteError, match=LIMITED):
                await ask(net, m, "rotated", request)

    run_memnet(test, tmp_path / "home", budget=60)
