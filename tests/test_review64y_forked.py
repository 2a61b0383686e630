"""Review 64y, forked: what a node's link says when the peer at its route refuses the node's
history as a fork (review 64u, rotation 1).

Forked 1: a link's failed attempt was read as "the authority refuses this identity's history as
a fork ... have the authority's operator revoke it and enroll a new identity" (and the row's
`forked`) whoever refused it: a link that reaches no authority (`Link.authority` None: a link
to a relay node, or to any node, pinned to whoever answered there first) takes that word from
any peer. Any such peer — a relay node the member links to, a node holding the address —
could send that CLOSE (its detail is its own text) and have the member's `node status` tell
her that her identity is lost and to enroll a new one. Only the authority the link reaches
(the identity the attempt is pinned to: its node's refusal is its word on the identity) is
read so now; any other peer's refusal is shown as the plain error it is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from troth.errors import ChannelError, ChannelFailure, IdentityFailure
from troth.identity import Identifier
from troth.node.links import Backoff, Link, LinkRow, Links

ROUTE = "/tcp/relay:4000"


class _SlowBackoff(Backoff):
    """A backoff that waits long: the test reads the row after the first failed attempt."""

    def delay(self, attempt: int, random: Any) -> float:
        return 60.0


def refused_row(authority: Identifier | None) -> LinkRow:
    """The status row of a link (reaching `authority`) whose peer refused its first attempt
    with an authenticated CLOSE naming a fork of the node's history."""

    async def run() -> LinkRow:
        failed = asyncio.Event()

        async def restore(link: Link) -> None:
            failed.set()
            raise ChannelError(
                ChannelFailure.PEER_INVALID,
                f"change 1: {IdentityFailure.FORK.value}",
                by_peer=True,
            )

        links = Links(restore, backoff=_SlowBackoff())
        link = links.link(ROUTE)
        link.authority = authority
        links.resume(ROUTE)
        async with asyncio.timeout(5):
            await failed.wait()
            while link.error is None:
                await asyncio.sleep(0)
        (row,) = links.rows()
        await links.stop()
        return row

    return asyncio.run(run())


def test_a_peer_that_is_no_authority_cannot_tell_the_node_its_identity_is_lost() -> None:
    """Forked 1: a link reaching no authority, refused with a fork's text: not `forked`, and
    its error does not tell the owner to have her identity revoked and enroll a new one."""
    row = refused_row(None)
    assert row.forked is False
    assert row.error is not None
    assert "history forks from the stored copy" in row.error  # the peer's word, as it is
    assert "the authority refuses" not in row.error
    assert "troth revoke identity" not in row.error
    assert "enroll a new identity" not in row.error
