"""Review 69k, wave1: attacks on this session's rotation telling (69d) that did not work.

- 1,008 nodes under the home, every daemon "running": the tellings run at most
  `MAX_NODES_TOLD_AT_ONCE` at a time (the bound on threads holds), and every one is told.
- Two rotations' tellings overlapping, the older arriving after the newer: a telling carries
  the authority's name only (`feed.sync` {authority}), and the daemon syncs that feed from
  where it is now, so an older telling names no older state to act on.
- The background telling outliving `Node.close`: it reads the home's files only (the nodes'
  configurations, their status files), never the closed node's store, and tells the others.
- A link's relay name moved to its new channel (69c, renewal 2) refused by the relay node
  half-way (Busy): the new channel is closed, the link reconnects over a third channel and
  creates the name again; once the old channel closed, the name still reaches the node.
- Another member granted the same relay name asks for it while the name moves, and after the
  old channel closed: refused (the name belongs to its owner), the owner still reached there.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import troth.node.traces
from tests.conftest import NOW
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review68v_renewal import _short_keys, advance_to
from tests.test_review69d_notify import _all_running
from troth.errors import Busy, Denied
from troth.identity import Identifier
from troth.limits import MAX_NODES_TOLD_AT_ONCE
from troth.node import init_node, open_node
from troth.node.channel_ends import ChannelEnd
from troth.node.key_renewal import replace_times
from troth.node.links import LinkState
from troth.node.runtime import NodeRuntime

TO_B = f"{HUB}/relay/b/service/echo"


def test_a_thousand_nodes_here_are_told_a_bounded_number_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"n{n:04d}" for n in range(63 * MAX_NODES_TOLD_AT_ONCE)]
    lock = threading.Lock()
    flying, most, told = 0, 0, []
    # each telling waits for MAX_NODES_TOLD_AT_ONCE of them in flight (more could not wait)
    together = threading.Barrier(MAX_NODES_TOLD_AT_ONCE, timeout=5)

    def control(home: object, name: str, status: object, op: str, arguments: object) -> None:
        nonlocal flying, most
        with lock:
            flying += 1
            most = max(most, flying)
        together.wait()
        with lock:
            flying -= 1
            told.append(name)

    _all_running(monkeypatch)
    monkeypatch.setattr(troth.node.traces, "_control", control)
    configs = [SimpleNamespace(name=name) for name in names]
    monkeypatch.setattr(troth.node.traces, "list_nodes", lambda home, unreadable: configs)
    node = SimpleNamespace(path=tmp_path / "nodes" / "me" / "node.json", name="me")
    troth.node.traces.tell_local_nodes(node, Identifier(bytes(32)))  # type: ignore[arg-type]
    assert sorted(told) == names
    assert most == MAX_NODES_TOLD_AT_ONCE


def test_overlapping_tellings_carry_no_state_an_older_one_could_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str, object]] = []
    lock = threading.Lock()

    def control(home: object, name: str, status: object, op: str, arguments: object) -> None:
        with lock:
            asked.append((name, op, arguments))

    _all_running(monkeypatch)
    monkeypatch.setattr(troth.node.traces, "_control", control)
    configs = [SimpleNamespace(name="other")]
    monkeypatch.setattr(troth.node.traces, "list_nodes", lambda home, unreadable: configs)
    node = SimpleNamespace(path=tmp_path / "nodes" / "me" / "node.json", name="me")
    authority = Identifier(bytes(32))
    tellings = [
        threading.Thread(target=troth.node.traces.tell_local_nodes, args=(node, authority))
        for _ in range(2)
    ]
    for telling in tellings:
        telling.start()
    for telling in tellings:
        telling.join(5)
    assert asked == [("other", "feed.sync", {"authority": str(authority)})] * 2


def test_a_telling_after_the_node_closed_tells_the_others(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("me", "a", "b"):
        init_node(name)
    told: list[str] = []

    def control(home: object, name: str, status: object, op: str, arguments: object) -> None:
        told.append(name)

    _all_running(monkeypatch)
    monkeypatch.setattr(troth.node.traces, "_control", control)
    with open_node("me") as node:
        authority = node.identities.create(now=NOW, name="x").identifier
    troth.node.traces.tell_nodes_here(node, [authority], hosting=True)  # (closed)
    assert sorted(told) == ["a", "b", "me"]


async def _relayed(net: MemNet) -> tuple[NodeRuntime, NodeRuntime, ChannelEnd, tuple[int, int]]:
    """b (short channel keys) holding relay name `b` at the hub, reached there by member a;
    b's channel to the hub, and its times to be replaced."""
    b = await net.node("b", prepare=_short_keys)
    await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
    await b.create_relay("b", HUB)
    a = await net.member("a")
    assert await a.send_message(TO_B, "up") == "up"
    old = await b.channel_to(route(HUB))
    times = replace_times(old.channel.me.attestation, old.id)
    assert times is not None
    return a, b, old, times


def test_a_relay_move_refused_half_way_is_made_good_by_the_links_reconnect(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        a, b, old, times = await _relayed(net)
        real = b._create_relay_over
        refusals = [1]

        async def refused_once(end: ChannelEnd, name: str) -> None:
            if refusals:
                refusals.pop()
                raise Busy("the relay node runs as many requests as it may")
            await real(end, name)

        b._create_relay_over = refused_once  # type: ignore[method-assign]
        net.clock.advance(times[0] - net.clock.now())
        new = await b.channel_to(route(HUB))  # the move spawned, refused: `new` closed
        assert new is not old
        for _ in range(200):
            await asyncio.sleep(0.01)
            (row,) = b.link_rows()
            if not refusals and row.state is LinkState.CONNECTED and new.channel.closed:
                break
        assert not refusals
        assert new.channel.closed
        await advance_to(net, times[1])
        assert old.channel.closed
        assert await a.send_message(TO_B, "again") == "again"
        third = await b.channel_to(route(HUB))
        assert third is not old
        assert third is not new

    run_memnet(test, tmp_path, relay_grace=3600)


def test_a_relay_name_moving_is_not_taken_by_another_member_granted_it(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        a, b, old, times = await _relayed(net)
        c = await net.member("c", **{"troth.relay": "b"})
        net.clock.advance(times[0] - net.clock.now())
        new = await b.channel_to(route(HUB))  # the move spawned
        taking = asyncio.ensure_future(c.create_relay("b", HUB))  # while it moves
        with pytest.raises(Denied, match="belongs to another identity"):
            await taking
        await advance_to(net, times[1])
        assert old.channel.closed
        assert not new.channel.closed
        with pytest.raises(Denied, match="belongs to another identity"):
            await c.create_relay("b", HUB)
        assert await a.send_message(TO_B, "again") == "again"

    run_memnet(test, tmp_path, relay_grace=3600)
