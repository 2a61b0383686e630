"""Review 57u: attacks on review 57n's code that did not work.

Relink 1's renewal (`NodeRuntime._restore` renews what the node shows when the peer refuses an
attempt for its credential): a hostile peer that answers every handshake with CREDENTIAL_INVALID
gets one renewal per attempt (the link's backoff paces the attempts), each a local read of the
node's own wallet, and no request of the node's to its authority (no refresh: the renewal asks
no one), so it is no amplification against the authority.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from troth.errors import ChannelError, ChannelFailure
from troth.node.runtime import NodeRuntime

ATTEMPTS = 5


def test_a_peer_refusing_every_credential_gets_one_local_renewal_per_attempt(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        m = await net.node("m")
        await m.enroll(net.ticket(), "m")
        (row,) = m.link_rows()
        link = m.links.link(row.route)
        renewals: list[int] = []
        asked: list[str] = []
        renew = m._renew_identity

        async def counted_renew() -> Any:
            renewals.append(1)
            return await renew()

        async def refused(*_args: object, **_kwargs: object) -> Any:
            raise ChannelError(ChannelFailure.CREDENTIAL_INVALID, "hostile", by_peer=True)

        async def refresh(*_args: object, **_kwargs: object) -> int:
            asked.append("refresh")
            return 0

        async def announce(*_args: object, **_kwargs: object) -> None:
            asked.append("announce")

        patch: dict[str, Any] = {
            "_renew_identity": counted_renew,
            "channel_to": refused,
            "refresh_credentials": refresh,
            "announce_rotations": announce,
        }
        for name, value in patch.items():
            setattr(m, name, value)
        for _ in range(ATTEMPTS):
            with pytest.raises(ChannelError):
                await NodeRuntime._restore(m, link)
        assert len(renewals) == ATTEMPTS
        assert asked == []

    run_memnet(test, tmp_path / "home", budget=120)
