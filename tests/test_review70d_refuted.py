"""Review 70d (telling): attacks on how a rotation is told here, and on the node's trust
locks, that did not work, each a test that fails if the defence it names breaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from pathlib import Path
from typing import cast

import pytest

import troth
import troth._api.network
import troth.node.authorities
from tests import test_review69x_wave4c as review69x
from tests.support.public_api import READ, acme_and_agents
from troth.clock import SystemClock
from troth.credentials.revocation import VerifiedFeed
from troth.identity import Identifier
from troth.node import open_node
from troth.node.daemon import control
from troth.node.rotation import rotate_local
from troth.node.trust import NodeTrust
from troth.transport.framing import frame

_Feed = review69x._Feed  # (what `set_feed` reads of a feed)


def test_the_trust_locks_taken_in_every_order_at_once(troth_home: Path) -> None:
    """Lock ordering (69u's install lock, 69x's `_reading_due`): threads reading the marks
    (`read_due`), re-reading the held feeds (`learn_held`, as `sync_runtimes_here` does from
    another runtime's thread), installing and dropping a feed (the loop's `set_feed`), with a
    feed hook that reads the marks itself (on the installing thread), all at once: none
    waits for good (a lock taken inside the other in one order and outside it in another
    would deadlock; the install runs its hooks with no lock held)."""
    with troth.Node.open("desk"):
        pass
    acme = Identifier(bytes(32))
    with open_node("desk") as node:
        trust = NodeTrust(node, None)
        trust.feed_hooks.append(lambda feed: trust.read_due())
        rounds = 40

        def installs() -> None:
            for count in range(rounds):
                trust.set_feed(acme, cast(VerifiedFeed, _Feed(count)))
                trust.drop_feed(acme)

        def reads() -> None:
            for _ in range(rounds):
                trust.read_due()

        def learns() -> None:
            for _ in range(rounds):
                trust.learn_held()

        threads = [threading.Thread(target=work) for work in (installs, reads, learns) * 2]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(15)
            assert not any(thread.is_alive() for thread in threads)
        finally:
            trust.detach()


def test_a_node_served_here_closed_while_it_is_told(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`desk` (a member of acme, served in this process) has its handle closed by another
    thread just as `support`'s rotation tells it (`sync_runtimes_here`, reading its store):
    its sync is a StorageError, logged; the rotation returns, and the hub served here (acme's
    host) holds the supersession all the same."""
    real = troth.node.authorities.sync_from
    with acme_and_agents() as world, troth.Node.open("desk") as desk:
        desk.enroll(world.acme.ticket(READ), identity=desk.identities.create("d"))

        def closing(stored: object, host: object, *, now: int) -> object:
            desk.close()  # (another thread's close, just before the sync reads the store)
            return real(stored, host, now=now)  # type: ignore[arg-type]

        monkeypatch.setattr(troth._api.network, "sync_from", closing)
        held: list[int] = []

        async def main() -> None:
            async with world.hub.serve() as hub, desk.serve():
                before = hub._runtime.trust.feeds[world.acme._hosted.identifier].count
                with caplog.at_level(logging.WARNING, logger="troth"):
                    world.agents.identities.rotate(world.support)
                after = hub._runtime.trust.feeds[world.acme._hosted.identifier].count
                held.append(after - before)

        asyncio.run(main())
    assert held == [1]
    assert any("was not told of the revocation" in r.getMessage() for r in caplog.records)


def test_a_daemon_answering_byte_by_byte_holds_its_teller_the_timeout_only(
    tmp_path: Path,
) -> None:
    """A control socket (its listener this process, as the node's status names it) that
    answers a byte every 20 ms, for ever: the control request ends with TimeoutError at its
    timeout (the whole answer is waited for within it, not each read), so a telling thread
    asking it (`_tell_feed_sync`) is held no longer than that."""
    path = tmp_path / "control.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    stop = threading.Event()
    answer = frame(b"\0" * 4000, 8000)

    def dribble() -> None:
        conn, _ = server.accept()
        with conn, contextlib.suppress(OSError):  # (the asker gone: a broken pipe)
            for byte in answer:
                if stop.wait(0.02):
                    return
                conn.sendall(bytes([byte]))

    status = {"running": True, "control": str(path), "pid": os.getpid()}
    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            control(tmp_path, "slow", "feed.sync", {}, timeout=0.5, status=status)
            outcome.append(None)
        except BaseException as exc:  # (the outcome checked below)
            outcome.append(exc)

    serving = threading.Thread(target=dribble, daemon=True)
    asking = threading.Thread(target=ask, daemon=True)
    serving.start()
    asking.start()
    asking.join(15)
    stop.set()
    serving.join(5)
    server.close()
    assert len(outcome) == 1
    assert isinstance(outcome[0], TimeoutError)


def test_the_loop_runs_while_a_node_served_here_is_synced_slowly(troth_home: Path) -> None:
    """`agents` served announces `support`'s rotation to acme (hosted by node `acme`, here)
    while `desk` (a member, served on the same event loop) has a store that takes as long as
    it is held to sync (`sync_runtimes_here`): the loop runs meanwhile (the sync is on the
    announcing node's storage thread), and a task on it is what lets the sync go on."""
    real = troth.node.authorities.sync_from
    entered, release = threading.Event(), threading.Event()
    released: list[bool] = []

    def slow(stored: object, host: object, *, now: int) -> object:
        entered.set()
        released.append(release.wait(10))  # (False: nothing on the loop ran for 10 s)
        return real(stored, host, now=now)  # type: ignore[arg-type]

    with acme_and_agents() as world, troth.Node.open("desk") as desk:
        desk.enroll(world.acme.ticket(READ), identity=desk.identities.create("d"))
        rotate_local(world.agents._stored, "support", clock=SystemClock())

        async def watch() -> None:
            while not entered.is_set():
                await asyncio.sleep(0.01)
            release.set()  # (on the loop, while the sync is held)

        async def main() -> None:
            async with desk.serve():
                watching = asyncio.create_task(watch())
                async with world.agents.serve():
                    pass  # (its first round announced the rotation)
                await watching

        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(troth._api.network, "sync_from", slow)
            asyncio.run(main())
    assert released  # (desk's sync, and agents' own: it trusts acme too)
    assert all(released)
