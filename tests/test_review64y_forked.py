"""Review 64y, forked: what a node says when a peer refuses the node's history as a fork
(review 64u, rotation 1 and 3).

Forked 1: a link's failed attempt was read as "the authority refuses this identity's history as
a fork ... have the authority's operator revoke it and enroll a new identity" (and the row's
`forked`) whoever refused it: a link that reaches no authority (`Link.authority` None: a link
to a relay node, or to any node, pinned to whoever answered there first) takes that word from
any peer. Any such peer — a relay node the member links to, a node holding the address —
could send that CLOSE (its detail is its own text) and have the member's `node status` tell
her that her identity is lost and to enroll a new one. Only the authority the link reaches
(the identity the attempt is pinned to: its node's refusal is its word on the identity) is
read so now; any other peer's refusal is shown as the plain error it is.

Forked 2: an announcement of another local identity than the node's own (an agent hosted on
the node) goes over the node's shared channel, which shows the NODE's history, not the
agent's. When the authority's node refused that channel as a fork of the node's history,
the agent's row said "the authority refuses this identity's history as a fork ... troth
revoke identity <the agent's identifier> ... enroll a new identity": the agent's owner was
told to revoke and replace an identity whose history no one judged, and the node's own
identity, the one refused, was not named. The row now names the node's identity as the one
refused (the agent's announcement waits on it: still `forked`, no retry over that channel
can change it).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from troth.errors import ChannelError, ChannelFailure, IdentityFailure
from troth.identity import Identifier
from troth.node import announcements
from troth.node.announcements import Announcer
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


NODE_ID = Identifier(b"\x0a" * 32)
AGENT_ID = Identifier(b"\x0b" * 32)


class _Worker:
    async def run(self, function: Any, *args: Any, **named: Any) -> Any:
        return function(*args, **named)


def test_an_agents_row_names_the_nodes_identity_the_authority_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forked 2: the shared channel (showing node `n`'s history) refused as a fork while agent
    `agent`'s rotation is announced over it: the row tells to revoke the node's identity,
    not the agent's."""
    authority = Identifier(b"\x01" * 32)

    async def channel_to(route: Any, *, expect: Identifier) -> Any:
        raise ChannelError(
            ChannelFailure.PEER_INVALID, f"change 1: {IdentityFailure.FORK.value}", by_peer=True
        )

    async def rotated(told: bool) -> None:
        return None

    records = {"n": NODE_ID, "agent": AGENT_ID}
    identities = SimpleNamespace(
        find=lambda ref: SimpleNamespace(identifier=records[ref].digest),
    )
    monkeypatch.setattr(announcements, "rotated_request", lambda *a, **k: b"request")
    announcer = Announcer(
        cast(Any, SimpleNamespace(identities=identities)),
        cast(Any, SimpleNamespace(hosted=None, routes={authority: "/tcp/hub:4000"})),
        own="n",
        worker=cast(Any, _Worker()),
        clock=cast(Any, SimpleNamespace(now=lambda: 1)),
        router=cast(Any, None),
        channel_to=channel_to,
        rotated=rotated,
    )
    row = asyncio.run(announcer._tell("agent", 2, authority))
    assert row["forked"] is True
    assert f"troth revoke identity {NODE_ID}" in row["error"]
    assert str(AGENT_ID) not in row["error"].split("troth revoke identity")[1]
    own = asyncio.run(announcer._tell("n", 2, authority))
    assert f"troth revoke identity {NODE_ID}" in own["error"]
