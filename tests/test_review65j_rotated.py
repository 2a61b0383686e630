"""Review 65j, rotated: what a node closes after its own rotation was announced (a review of
review 65a, rotated 1).

Rotated 1: `_rotated` closes the channels showing the node's current history only when an
authority was told "since the last time"; it judged that by the authorities still pending at
the end of the previous `_rotated` and at the end of this one. A node whose rotation was
announced in full (nothing pending: an empty set kept) and that rotates again, its link to the
authority reconnected meanwhile (showing the new history, the feed synced at once, before the
catch-up announces), announced the new rotation at the catch-up — to every authority, so
nothing pending before or after: "nobody told", and the link's channel stayed open. The node's
feed then did not name its own rotation until the next maintenance round's feed refresh (the
first rotation of a process got it at once: "the first time, all"), and every peer holding
the link's channel kept it too. `told` is now whether one of this round's announcements of
the node's own history succeeded (or the first `_rotated` of the process).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.nodes import MemNet, run_memnet
from tests.test_reconnect import FAST, _superseded, crash_and_restart_hub, link_state, until
from tests.test_review63g_announce import _authority, _World
from troth.errors import Unreachable
from troth.node.links import LinkState


def test_a_second_rotation_announced_at_a_reconnect_resyncs_the_link(tmp_path: Path) -> None:
    """Rotated 1: the second rotation of the process, announced by the catch-up after the
    link came back, gets the link's feed naming it, as the first one did."""

    async def test(net: MemNet) -> None:
        a = await net.node("a", backoff=FAST)
        await a.enroll(net.ticket(), "a")
        a.node.identities.rotate("a", now=net.clock.now())
        (row,) = await a.announce_rotations()  # the first: announced, nothing pending
        assert row["announced"] is True
        await until(lambda: link_state(a) is LinkState.CONNECTED)
        rotated = a.node.identities.rotate("a", now=net.clock.now()).identity

        async def while_down() -> None:
            await until(lambda: link_state(a) is not LinkState.CONNECTED)

        await crash_and_restart_hub(net, down=while_down)
        await until(lambda: _superseded(a, rotated), timeout=5)

    run_memnet(test, tmp_path / "home", budget=30)


def test_rotated_is_told_whether_one_own_announcement_succeeded() -> None:
    """Rotated 1, at the announcer: `told` says whether one of the round's announcements of
    the node's own history succeeded, whatever was pending at the round before."""
    a, b = _authority(0), _authority(1)
    failing = _World([("node", 2, [a, b])], fail={("node", a): Unreachable("no answer")})
    asyncio.run(failing.announcer.announce())
    all_failing = _World(
        [("node", 2, [a, b])],
        fail={("node", a): Unreachable("no answer"), ("node", b): Unreachable("no route")},
    )
    asyncio.run(all_failing.announcer.announce())
    assert (failing.told, all_failing.told) == ([True], [False])
