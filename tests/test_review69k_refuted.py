"""Review 69k, wave1: attacks on this session's rotation telling (69d) that did not work.

- 1,008 nodes under the home, every daemon "running": the tellings run at most
  `MAX_NODES_TOLD_AT_ONCE` at a time (the bound on threads holds), and every one is told.
- Two rotations' tellings overlapping, the older arriving after the newer: a telling carries
  the authority's name only (`feed.sync` {authority}), and the daemon syncs that feed from
  where it is now, so an older telling names no older state to act on.
- The background telling outliving `Node.close`: it reads the home's files only (the nodes'
  configurations, their status files), never the closed node's store, and tells the others.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import troth.node.traces
from tests.conftest import NOW
from tests.test_review69d_notify import _all_running
from troth.identity import Identifier
from troth.limits import MAX_NODES_TOLD_AT_ONCE
from troth.node import init_node, open_node


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
