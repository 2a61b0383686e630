"""Review 65j, refuted: attacks on review 65a's fork refusals and channel closing that did not
work.

- An answer of the fork refusal's form that is no FAILED answer of the authority's service
  (a `no-route` answer, which any hop of a routed path may give; a channel closed under the
  call; a local NotFound quoting it) is no fork refusal.
- The running node's `refused_as_fork` entry of an announcement does not survive the
  announcement's success, and a busy answer of the fork's form sets none.
- A peer keeping a channel that shows the node's pre-rotation history open: after a second
  rotation whose announcement stays pending (nothing told: review 65j, rotated 1), the
  channel opened before it is closed all the same, the one opened after it stays open.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tests.support.nodes import MemNet, route, run_memnet
from tests.test_review63g_announce import _authority, _settle, _World
from troth.errors import (
    Busy,
    Congested,
    IdentityFailure,
    NotFound,
    RemoteError,
    RoutingError,
    Unreachable,
)
from troth.node.forked_refusal import refused_as_fork

ANSWERED = f"AuthorityError: request invalid (change 1: {IdentityFailure.FORK.value})"
OTHER = "/tcp/other:4000"


@pytest.mark.parametrize(
    "error",
    [RoutingError(ANSWERED), Unreachable(ANSWERED), Congested(ANSWERED), NotFound(ANSWERED)],
    ids=lambda e: type(e).__name__,
)
def test_no_other_error_of_the_answers_form_is_a_fork_refusal(error: Exception) -> None:
    assert refused_as_fork(RemoteError(ANSWERED))
    assert not refused_as_fork(error)


def test_a_fork_entry_is_gone_once_the_announcement_succeeds() -> None:
    a = _authority(0)
    world = _World([("bot", 2, [a])], fail={("bot", a): RemoteError(ANSWERED)})
    record = SimpleNamespace(identifier=b"\x09" * 32)
    node = cast(Any, world.announcer.node)
    node.identities = SimpleNamespace(find=lambda ref: record)
    (row,) = asyncio.run(world.announcer.announce())
    assert row["forked"] is True
    assert [e["authority"] for e in world.announcer.refused_as_fork()] == [str(a)]
    world.fail[("bot", a)] = Busy(ANSWERED)  # asked again: no refusal
    (row,) = asyncio.run(world.announcer.announce())
    assert row["forked"] is False
    del world.fail[("bot", a)]
    (row,) = asyncio.run(world.announcer.announce())
    assert row["announced"] is True
    assert world.announcer.refused_as_fork() == []


def test_a_second_rotation_left_pending_still_closes_the_pre_rotation_channel(
    tmp_path: Path,
) -> None:
    closed: list[bool] = []

    async def test(net: MemNet) -> None:
        agent = await net.member("agent")
        other = await net.node("other", listen=("other", 4000))
        await other.enroll(net.ticket(), "other")
        agent.node.identities.rotate("agent", now=net.clock.now())
        (row,) = await agent.announce_rotations("agent")  # the first: told
        assert row["announced"] is True
        before = await agent.channel_to(route(OTHER))
        assert net.hub is not None
        await net.hub.stop()  # the second's announcement stays pending: nobody told
        agent.node.identities.rotate("agent", now=net.clock.now())
        (row,) = await agent.announce_rotations("agent")
        assert row["announced"] is False
        await _settle()
        closed.append(before.channel.closed)
        after = await agent.channel_to(route(OTHER))
        await agent.announce_rotations("agent")
        await _settle()
        closed.append(after.channel.closed)

    run_memnet(test, tmp_path / "home", budget=30)
    assert closed == [True, False]
