"""Review 70d, telling: a second look at how a rotation is told to the nodes on this machine
(review 69d, 69k, 69p, 69u, 69x), attacked with daemons that do not answer.

telling 1 (medium: a thread, and a telling of every daemon here, per announcement) A running
node's announcement to an authority hosted by another node here (`Announcer._tell_here`)
started a `troth-tell-local-nodes` thread of its own for each announcement it made: a round
announcing the rotations of many local identities (or a rotation announced again by a second
round while the first telling still waited) ran that many tellings at once, each with up to
`MAX_NODES_TOLD_AT_ONCE` threads and each asking every daemon here to sync the same feed.
With daemons that do not answer (stopped, hung), n identities held n * 16 threads for 30 s,
and each daemon got n identical `feed.sync` requests queued. Now one telling runs at a time
per running node; the authorities announced meanwhile are told once more after it, together.

telling 2 (low: descriptors held per node across the commit) A revocation or rotation with an
authority here marks every other node of the home that trusts it (`local_nodes_due`) and
held, for each node marked, its store open (its file, -wal and -shm) and its
`node.db.revoking` lock with its gate until the authority's commit: five descriptors a node,
so a home of 200 such nodes exhausted the process's default 1,024 (every socket and file the
process opened meanwhile, a served node's channels too, failed). Each store is closed once its
mark is committed (opened again only to clear a mark the authority refused), and the lock is
held without its gate (it is never alone): one descriptor a node.

telling 3 (low: a warning per rotation) `announce_here` (`troth identity rotate`,
`Identities.rotate`) told the daemons here in a `finally` whatever the authorities here took:
a rotation of an identity enrolled nowhere listed every node of the home and logged each
damaged one as "not told of the revocation". Nothing is read when there is nothing to tell.

telling 4 (low: a silent daemon held back the nodes served in this process) A revocation by
the authority a handle hosts (`Authority.revoke`, `Authority.revoke_identity`) or of a link
with an authority here (`Node.revoke`) told the daemons running here first, each silent one
holding the call its 30 s control timeout, and only then synced the nodes served in this
process (`sync_runtimes_here`): marked, they refused every member of that authority from their
next poll of the marks until their own sync. The nodes served here are synced first now,
right after the commit, as a rotation's are (`announce_locally`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import troth
import troth.node.daemon
import troth.node.traces
from tests.conftest import NOW
from tests.support.public_api import READ, acme_and_agents
from tests.test_review70m_telling2 import marked_node
from troth.clock import SystemClock
from troth.node import init_node, open_node
from troth.node.authorities import announce_here
from troth.node.localdue import local_nodes_due
from troth.node.rotation import rotate_local

MEMBERS = ("m0", "m1", "m2", "m3", "m4")
TELLING = "troth-tell-local-nodes"


@pytest.fixture
def members(troth_home: Path) -> Iterator[troth.Node]:
    """acme's hub (node `acme`) hosting the authority; node `agents` with five members of it,
    each rotated by a process that did not announce it (the agents' next round does)."""
    with troth.Node.open("acme") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        for name in MEMBERS:
            agents.enroll(acme.ticket(READ), identity=agents.identities.create(name))
    with open_node("agents") as node:
        for name in MEMBERS:
            rotate_local(node, name, clock=SystemClock())
    with troth.Node.open("agents") as agents:
        yield agents


def _tellings() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == TELLING]


def test_telling1_one_telling_at_a_time_whatever_the_announcements(
    members: troth.Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agents` served: its first round announces five rotations to acme (hosted by node
    `acme` here) while the daemon running `acme` holds every control request until released.
    One telling thread runs, not five; once released, acme's daemon was asked to sync acme's
    feed at most twice (the telling under way, and one more for the announcements made
    meanwhile), not once per announcement."""
    release = threading.Event()
    asked: list[tuple[str, object]] = []

    def status(home: object, name: str) -> dict[str, object]:
        return {"name": name, "running": name != "agents"}  # (served here, below)

    def held(home: object, name: str, status: object, op: str, arguments: object) -> None:
        asked.append((name, arguments))
        release.wait(10)

    monkeypatch.setattr(troth.node.daemon, "node_status", status)
    monkeypatch.setattr(troth.node.traces, "_control", held)
    before = set(_tellings())
    running: list[int] = []

    async def main() -> None:
        async with members.serve():
            running.append(len(set(_tellings()) - before))  # (its first round ran)

    try:
        asyncio.run(main())
    finally:
        release.set()
        for thread in _tellings():
            thread.join(10)
    assert running == [1]
    assert 1 <= len(asked) <= 2
    assert {name for name, _ in asked} == {"acme"}


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_telling2_a_mark_holds_one_descriptor_per_node_until_the_commit(
    troth_home: Path,
) -> None:
    """Twelve nodes here trust authority `x` (node `revoker`'s identity): a revocation or
    rotation with it marks them all due a sync, and holds each one's `node.db.revoking`
    until the authority's commit; not its store too (three descriptors more each: a home of
    250 nodes exhausted the default limit of 1,024, and every socket the process opened
    meanwhile, its channels' too, failed)."""
    names = [f"n{i:02d}" for i in range(12)]
    for name in ("revoker", *names):
        init_node(name)
    with open_node("revoker") as revoker:
        authority = revoker.identities.create(now=NOW, name="x").identifier
    for name in names:
        with open_node(name) as node:
            node.wallet.store.trust_authority(authority.digest, "node:revoker", NOW)
    with open_node("revoker") as revoker:
        before = _descriptors()
        with local_nodes_due(revoker, authority, now=NOW) as due:
            held = _descriptors() - before
            assert sorted(due.names) == names
        assert _descriptors() <= before
    assert held <= len(names) + 5
    with open_node("n00") as node:  # (its mark stands: settled by its next sync)
        assert node.wallet.store.sync_due(authority.digest)


def test_telling3_a_rotation_no_authority_here_took_reads_no_node_here(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`agent` (node `owner`) is enrolled nowhere: its rotation (`troth identity rotate`,
    `Identities.rotate`) has nothing to tell, and neither lists the home's nodes nor warns
    that node `b`, whose node.json is damaged, "was not told of the revocation"."""
    for name in ("owner", "b"):
        init_node(name)
    (troth_home / "nodes" / "b" / "node.json").write_bytes(b"{damaged")
    with open_node("owner") as owner:
        owner.identities.create(now=NOW, name="agent")
        rotate_local(owner, "agent", clock=SystemClock())
        with caplog.at_level(logging.WARNING, logger="troth"):
            done, remote = announce_here(owner, "agent", now=NOW + 60)
    assert (done, remote) == ([], [])
    assert not [r for r in caplog.records if "was not told" in r.getMessage()]


def test_telling4_the_nodes_served_here_hold_a_revocation_before_any_daemon_is_asked(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """acme (hosted by node `acme`) revokes `support`'s credential through the API while
    `desk` (a member) is served in this process and every other node here runs a daemon:
    when each daemon is asked, desk's running node already holds the revocation."""
    seen: list[int] = []
    with acme_and_agents() as world, troth.Node.open("desk") as desk:
        desk.enroll(world.acme.ticket(READ), identity=desk.identities.create("d"))
        acme = world.acme._hosted.identifier

        async def main() -> None:
            async with desk.serve() as running:
                feeds = running._runtime.trust
                before = feeds.feeds[acme].count

                def status(home: object, name: str) -> dict[str, object]:
                    return {"name": name, "running": name != "desk"}

                def asked(home: object, name: str, *args: object) -> None:
                    seen.append(feeds.feeds[acme].count - before)

                monkeypatch.setattr(troth.node.daemon, "node_status", status)
                monkeypatch.setattr(troth.node.traces, "_control", asked)
                world.acme.revoke(world.member)

        asyncio.run(main())
    assert seen  # (acme's daemon and agents')
    assert all(grown == 1 for grown in seen)


def test_telling2_a_store_removed_while_marked_is_not_made_again_by_a_clear(
    troth_home: Path,
) -> None:
    """Node `n`'s store, marked, is removed before the authority refuses the revocation
    (`LocalDue.clear`): the mark is not cleared by opening the store again, which would make
    an empty one ("a node whose node.db does not exist is never created")."""
    authority, store = marked_node(troth_home)
    with open_node("revoker") as revoker, local_nodes_due(revoker, authority, now=NOW) as due:
        assert due.names == ["n"]
        for path in store.parent.glob("node.db*"):
            path.unlink()
        due.clear()
    assert not store.exists()
