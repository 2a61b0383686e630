"""Review 64u, refuted: attacks on the messages a member whose thief's rotation won is given
(tests/test_review64u_rotation.py) that did not work.

- A close this node sent (its own refusal of a peer whose history forks from its copy: an
  authority whose keys were stolen) is not taken for the authority's refusal of this node's
  history, nor is an authority's refusal of another kind: only the peer's authenticated
  PEER_INVALID close, or a local authority's REQUEST_INVALID, naming a fork, is.
- The member's announcement sent again over a channel showing her rotated history (rotation 2)
  does not get it stored or published: the authority keeps the thief's history and feed
  entry, the owner's announcement stays pending, and the close the authority sends her is the
  same bare `change 1: history forks from the stored copy` any forked peer gets (nothing new
  on the wire: her node explains it).
- Nothing but the node's own identity's refused announcement is sent again, and a busy answer
  is not (it says to ask later, not that the channel shows the old history).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.support.announced_restore import thief_rotated_first
from tests.support.nodes import MemNet, run_memnet
from troth.credentials import verify_page
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    Busy,
    ChannelError,
    ChannelFailure,
    Denied,
    IdentityFailure,
)
from troth.identity import Identifier
from troth.node import announcements
from troth.node.announcements import Announcer
from troth.node.forked_refusal import refused_as_fork

FORK = f"change 1: {IdentityFailure.FORK.value}"


def test_only_the_authoritys_own_fork_refusal_is_named_a_fork_of_this_history() -> None:
    assert refused_as_fork(ChannelError(ChannelFailure.PEER_INVALID, FORK, by_peer=True))
    assert refused_as_fork(AuthorityError(AuthorityFailure.REQUEST_INVALID, FORK))
    assert not refused_as_fork(ChannelError(ChannelFailure.PEER_INVALID, FORK))  # this side's
    assert not refused_as_fork(ChannelError(ChannelFailure.REVOKED, FORK, by_peer=True))
    assert not refused_as_fork(
        ChannelError(ChannelFailure.PEER_INVALID, "superseded history", by_peer=True)
    )
    assert not refused_as_fork(AuthorityError(AuthorityFailure.NOT_A_MEMBER, FORK))


def test_the_announcement_over_the_rotated_history_is_still_refused(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        agent = await thief_rotated_first(net)
        identifier = agent.node.identities.find("agent").identifier
        (row,) = await agent.announce_rotations("agent")
        assert row["error"].startswith(f"peer invalid ({FORK}): ")  # the bytes sent: as before
        hub = net.hub
        assert hub is not None
        owner = agent.node.identities.get("agent", now=net.clock.now()).identity
        page = verify_page(
            net.authority.feed(now=net.clock.now()),
            authority=net.authority.identifier,
            now=net.clock.now(),
        )
        named = page.supersession(Identifier(identifier))
        assert named is not None
        assert named.changes == 2  # the thief's rotation, published
        assert named.change_hash != owner.changes[1].change_hash
        assert hub.node.identities.stored_changes(Identifier(identifier)) == 2
        _, pending = agent.node.wallet.unannounced("agent")
        assert pending == [net.authority.identifier]

    run_memnet(test, tmp_path / "home", budget=30)


class _Worker:
    async def run(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)


def _announcer(opened: list[str]) -> Announcer:
    async def channel_to(route: Any, *, expect: Identifier) -> Any:
        return SimpleNamespace(enc=b"shared")

    async def channel_as(name: str, route: Any, *, expect: Identifier | None = None) -> Any:
        opened.append(name)
        return SimpleNamespace(enc=b"own")

    async def rotated(told: bool) -> None:
        return None

    authority = Identifier(b"\x01" * 32)
    node = SimpleNamespace(identities=SimpleNamespace())
    trust = SimpleNamespace(hosted=None, routes={authority: "/tcp/hub:4000"})
    return Announcer(
        cast(Any, node),
        cast(Any, trust),
        own="n",
        worker=cast(Any, _Worker()),
        clock=cast(Any, SimpleNamespace(now=lambda: 1)),
        router=cast(Any, None),
        channel_to=channel_to,
        rotated=rotated,
        channel_as=channel_as,
    )


@pytest.mark.parametrize(
    ("ref", "refusal"),
    [("n", Busy("busy: ask later")), ("agent", Denied(("superseded history",)))],
)
def test_no_other_refusal_is_sent_again_over_a_channel_of_its_own(
    monkeypatch: pytest.MonkeyPatch, ref: str, refusal: Exception
) -> None:
    opened: list[str] = []
    announcer = _announcer(opened)

    async def call(*args: Any) -> Any:
        raise refusal

    monkeypatch.setattr(announcements, "call", call)
    monkeypatch.setattr(announcements, "rotated_request", lambda *a, **k: b"request")
    with pytest.raises(type(refusal)):
        asyncio.run(announcer._announce(ref, Identifier(b"\x01" * 32)))
    assert opened == []
