"""Review 69d, notify: how a rotation (and a revocation) on this machine tells the nodes
running here (reviews 68p, 68u), attacked with daemons that do not answer.

notify 1 (medium: a daemon that does not answer held back the rotation's supersession at the
next authority) `announce_here` (`troth identity rotate`, `Identities.rotate`, also with
`--compromised`: a stolen backup's key) announced the rotation to the authorities on this
machine one after the other, and between two of them asked every daemon running here to sync
the first one's feed (`tell_local_nodes`, `tell_hosting_node`), each over its control socket
with a 30 s timeout. A daemon that does not answer (stopped with Ctrl-Z or SIGSTOP, hung) held
each telling 30 s: with ten of them, the second authority took the supersession five minutes
after the first (and never, when the waiting user pressed Ctrl-C), its members' nodes
admitting the thief's copy of the history meanwhile. Now every authority here takes the
supersession first, and the daemons are told after.

notify 2 (low: the daemons told one after the other) `tell_local_nodes` (after every
revocation and rotation here) asked the daemons running the home's nodes one at a time: each
silent one held the caller `DAEMON_TOLD_SECONDS`-long in turn (ten of them: five minutes of a
`troth revoke`, a rotation, or the hosting daemon's telling thread, the daemons after them told
that much later). Now they are asked at once (`limits.MAX_NODES_TOLD_AT_ONCE` at a time).

notify 3 (medium: a silent daemon froze a running node's storage) A node running (a daemon,
`Node.serve`) that announced a rotation of one of its identities to an authority hosted by
another node here (`announce_locally`, its maintenance round) asked the daemons here to sync
that feed on its storage thread: each one not answering held every storage call of the node
(leases, decisions, its channels' checks) 30 s. Now it asks them from a thread of its own, as
the authority service does.

notify 4 (low: one damaged node left every daemon here untold) `tell_local_nodes` listed the
home's nodes with `list_nodes`, which raises on the first node.json it cannot read (damaged,
its mode widened by hand): the error was logged and no daemon running here was told of the
revocation or rotation. Now that node is logged and the others told, as `local_nodes_due`
marks them.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import troth.node.authorities
import troth.node.daemon
import troth.node.traces
from tests import test_review67f_secrets as review67f
from tests.conftest import NOW
from tests.support.enroll import enroll_in_process
from tests.support.killed import killed_after
from tests.support.public_api import Agents
from troth.clock import FixedClock, SystemClock
from troth.credentials import Attributes
from troth.node import init_node, open_node
from troth.node.authorities import announce_here
from troth.node.rotation import rotate_local

AUTHORITIES = ("acme", "globex")
world = review67f.world  # acme's hub (node `acme`) hosting the authority, `agents` a member


def _all_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node of the home taken as running (stood in for, as in review 68u)."""

    def status(home: object, name: str) -> dict[str, object]:
        return {"name": name, "running": True}

    monkeypatch.setattr(troth.node.daemon, "node_status", status)


def test_notify1_a_silent_daemon_holds_back_no_authority_here(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agent` (node `owner`), a member of acme and globex (each hosted by a node here),
    rotates as compromised; every daemon here is silent (its control request times out).
    Every telling is asked once both authorities took the supersession."""
    clock = FixedClock(NOW)
    for name in (*AUTHORITIES, "owner"):
        init_node(name)
    with open_node("owner") as owner:
        owner.identities.create(now=NOW, name="agent")
        for name in AUTHORITIES:
            with open_node(name) as hosting:
                authority = hosting.create_authority(name, now=NOW)
                ticket = authority.create_ticket(
                    creator=authority.identifier,
                    attributes=Attributes(),
                    address=f"node:{name}",
                    now=NOW,
                )
                enroll_in_process(owner, "agent", authority, str(ticket), clock)
        clock.advance(60)
        rotate_local(owner, "agent", clock=clock, compromised=True)

        committed: list[int | None] = []
        rotated_here = troth.node.authorities.rotated_here

        def counted(*args: object, **kwargs: object) -> int | None:
            seq = rotated_here(*args, **kwargs)  # type: ignore[arg-type]
            committed.append(seq)
            return seq

        seen: list[int] = []

        def silent(home: object, name: str, status: object, op: str, arguments: object) -> None:
            seen.append(len(committed))
            raise TimeoutError(f"the node did not answer {op} within 30 s")

        _all_running(monkeypatch)
        monkeypatch.setattr(troth.node.authorities, "rotated_here", counted)
        monkeypatch.setattr(troth.node.traces, "_control", silent)
        done, remote = announce_here(owner, "agent", now=clock.now())
        assert remote == []
        assert len(done) == 2
        assert all(seq is not None for seq in committed)
        assert seen  # (told: acme's and globex's daemons, and owner's)
        assert seen == [2] * len(seen)  # none before both supersessions were committed


def test_notify2_the_daemons_here_are_told_at_once(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four daemons here, none answering until all four were asked (a barrier): told one
    after the other, the first waited for the others without end."""
    names = ["revoker", "a", "b", "c", "d"]
    for name in names:
        init_node(name)
    arrived = threading.Barrier(4, timeout=3)
    told: list[str] = []

    def waiting(home: object, name: str, status: object, op: str, arguments: object) -> None:
        arrived.wait()  # (a BrokenBarrierError past the timeout: not an OSError, raised)
        told.append(name)

    _all_running(monkeypatch)
    monkeypatch.setattr(troth.node.traces, "_control", waiting)
    with open_node("revoker") as node:
        authority = node.identities.create(now=NOW, name="x").identifier
        troth.node.traces.tell_local_nodes(node, authority)
    assert sorted(told) == ["a", "b", "c", "d"]


def test_notify3_a_running_node_tells_the_daemons_here_off_its_storage_thread(
    world: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`support` (node `agents`) rotated by a process killed before it announced; `agents`
    served (its first round announces it to acme, hosted by node `acme` here) while the
    daemon running `acme` does not answer: it is asked from a thread that is not the node's
    storage thread."""

    def work() -> None:
        with open_node("agents") as node:
            rotate_local(node, "support", clock=SystemClock(), compromised=True)

    assert killed_after(0, work) == 0
    asked_from: list[str] = []

    def status(home: object, name: str) -> dict[str, object]:
        return {"name": name, "running": name != "agents"}  # (served here, below)

    def silent(home: object, name: str, status: object, op: str, arguments: object) -> None:
        asked_from.append(threading.current_thread().name)
        raise TimeoutError(f"the node did not answer {op} within 30 s")

    monkeypatch.setattr(troth.node.daemon, "node_status", status)
    monkeypatch.setattr(troth.node.traces, "_control", silent)

    async def main() -> None:
        async with world.agents.serve(listen=("127.0.0.1", 0)):
            pass  # (its first maintenance round ran: the announcement)

    asyncio.run(main())
    for thread in threading.enumerate():
        if thread.name == "troth-tell-local-nodes":
            thread.join(5)
    with open_node("agents") as agents:
        assert agents.wallet.unannounced("support")[1] == []
    assert asked_from
    assert "troth-store" not in asked_from


def test_notify4_a_damaged_node_here_keeps_no_other_daemon_untold(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node `b`'s node.json damaged (here: not JSON): the daemons running `a` and `c` are
    asked to sync all the same."""
    for name in ("revoker", "a", "b", "c"):
        init_node(name)
    (troth_home / "nodes" / "b" / "node.json").write_bytes(b"{damaged")
    told: list[str] = []

    def control(home: object, name: str, status: object, op: str, arguments: object) -> None:
        told.append(name)

    _all_running(monkeypatch)
    monkeypatch.setattr(troth.node.traces, "_control", control)
    with open_node("revoker") as node:
        authority = node.identities.create(now=NOW, name="x").identifier
        troth.node.traces.tell_local_nodes(node, authority)
    assert sorted(told) == ["a", "c"]
