"""The nodes that network benchmarks run against: a hub hosting an authority and a member
node `b`, each in a process of its own (as nodes run), and a member node `a` in the
benchmark's own process (a `NodeRuntime`, so that only its calls are timed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from troth.authority import Authority
from troth.credentials import Attributes
from troth.node import init_node, open_node
from troth.node.daemon import control, start_daemon, stop_daemon
from troth.node.runtime import NodeRuntime

__all__ = ["BenchNodes", "bench_ticket", "member_nodes"]


@dataclass(frozen=True)
class BenchNodes:
    """Running benchmark nodes: `a` in this process, and where the hub and b listen."""

    home: Path
    a: NodeRuntime
    hub: str
    """The route to the hub, `/tcp/HOST:PORT`."""
    b: str
    """The route to b, `/tcp/HOST:PORT`."""


def bench_ticket(authority: Authority, address: str, **attributes: str) -> str:
    """A ticket of `authority` (at `address`) granting `bench.team=x` and `attributes`."""
    return str(
        authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"bench.team": "x", **attributes}),
            address=address,
            now=int(time.time()),
        )
    )


@contextlib.contextmanager
def member_nodes(
    runner: asyncio.Runner, home: Path, *, b_attributes: dict[str, str] | None = None
) -> Iterator[BenchNodes]:
    """Start the hub and b (enrolled, with `b_attributes` too) as daemons in `home`, and
    a, enrolled, in `runner`; stop them all on exit."""
    for name in ("hub", "a", "b"):
        init_node(name, home=home)
    with open_node("hub", home=home) as hub_node:
        hub_node.create_authority("hub", now=int(time.time()))
    started: list[str] = []
    try:
        hub = f"/tcp/{start_daemon(home, 'hub', '127.0.0.1:0')['listening']}"
        started.append("hub")
        with open_node("hub", home=home) as hub_node:
            ticket_a = bench_ticket(hub_node.authority(), hub)
            ticket_b = bench_ticket(hub_node.authority(), hub, **(b_attributes or {}))
        b = f"/tcp/{start_daemon(home, 'b', '127.0.0.1:0')['listening']}"
        started.append("b")
        control(home, "b", "enroll", {"ticket": ticket_b})
        with open_node("a", home=home) as node_a:
            a = NodeRuntime(node_a)
            runner.run(a.start())
            try:
                runner.run(a.enroll(ticket_a, "a"))
                yield BenchNodes(home, a, hub, b)
            finally:
                runner.run(a.stop())
    finally:
        for name in started:
            stop_daemon(home, name)
