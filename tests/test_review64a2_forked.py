"""Review 64a2, forked: who may tell a node that its identity is lost (review 64y, forked 1).

Forked 1: review 64y read a link's fork refusal only when the link reaches an authority
(`Link.authority`), but the node keeps a link to EVERY remote authority it trusts (its feed is
synced there: `NodeRuntime._sync_links`), co-trusted ones included, whose member the node's
identity is not. Such an authority's node could close the node's handshake with a fork's text
(its CLOSE detail is its own text) and the member's `node status` said `forked` and "the
authority refuses this identity's history as a fork ... have the authority's operator revoke
it ... and enroll a new identity": a co-trusted authority, whose word on her identity counts
for nothing with her own authority, told her to give it up. Now only an authority the node's
identity holds a credential of (`Upkeep.credited`, read with the trust; `Links.judges`) has
its refusal read as a fork; any other's is shown as the plain error it is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.nodes import MemNet, run_memnet
from troth.errors import ChannelError, ChannelFailure, IdentityFailure
from troth.identity import Identifier
from troth.node.links import Backoff, Link, LinkRow, Links

ROUTE = "/tcp/partner:4000"
OWN = Identifier(b"\x01" * 32)
CO_TRUSTED = Identifier(b"\x02" * 32)


class _SlowBackoff(Backoff):
    def delay(self, attempt: int, random: Any) -> float:
        return 60.0


def refused_row(authority: Identifier, **judges: Any) -> LinkRow:
    """The row of a link reaching `authority` whose node refused its first attempt with an
    authenticated CLOSE naming a fork of the node's history."""

    async def run() -> LinkRow:
        async def restore(link: Link) -> None:
            raise ChannelError(
                ChannelFailure.PEER_INVALID,
                f"change 1: {IdentityFailure.FORK.value}",
                by_peer=True,
            )

        links = Links(restore, backoff=_SlowBackoff(), **judges)
        link = links.link(ROUTE)
        link.authority = authority
        links.resume(ROUTE)
        async with asyncio.timeout(5):
            while link.error is None:
                await asyncio.sleep(0)
        (row,) = links.rows()
        await links.stop()
        return row

    return asyncio.run(run())


def test_forked_1_a_co_trusted_authority_cannot_tell_the_node_its_identity_is_lost() -> None:
    """A link to a co-trusted authority (not one the node's identity holds a credential of)
    refused with a fork's text: not `forked`, no advice to revoke and enroll again."""
    row = refused_row(CO_TRUSTED, judges={OWN}.__contains__)
    assert row.forked is False
    assert row.error is not None
    assert "history forks from the stored copy" in row.error
    assert "troth revoke identity" not in row.error
    assert "enroll a new identity" not in row.error
    own = refused_row(OWN, judges={OWN}.__contains__)  # her own authority's word still counts
    assert own.forked is True
    assert own.error is not None
    assert "enroll a new identity" in own.error


def test_forked_1_a_running_node_judges_by_the_authorities_it_holds_credentials_of(
    tmp_path: Path,
) -> None:
    """The runtime's links read a fork refusal only from the authority the member enrolled
    with, not from any other identifier (a co-trusted authority's)."""
    seen: list[tuple[bool, bool]] = []

    async def test(net: MemNet) -> None:
        agent = await net.member("agent")
        judges = agent.links.judges
        assert judges is not None
        seen.append((judges(net.authority.identifier), judges(CO_TRUSTED)))

    run_memnet(test, tmp_path / "home", budget=30)
    assert seen == [(True, False)]
