"""Review 62m, lifecycle: a running node's upkeep tasks come back from every failure (docs/node.md
is docs/architecture.md "Node" here; troth.node.upkeep).

Each test runs a hub on the in-memory network (tests.support.nodes) and drives one of its upkeep
tasks with its poll made 0 (no real sleeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.support.waits import until
from troth.credentials import VerifiedFeed
from troth.errors import StorageError
from troth.node import upkeep
from troth.node.runtime import NodeRuntime
from troth.node.trust import FEED_STALENESS


def test_the_hosted_watch_survives_an_unexpected_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 62m, lifecycle 1: the watch on the hosted authority's store caught only
    TrothError: any other exception of one re-read (a bug in a feed's decoding, a MemoryError
    under load) ended the task for good, silently, and a `troth revoke` on this machine took
    effect only at the next maintenance round (MAINTENANCE_SECONDS, 30 s) instead of within
    HOSTED_FEED_POLL (1 s: what limits promises), for as long as the node ran. Every other
    upkeep loop (the maintenance round, the marks' poll) logs any Exception and goes on."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        calls: list[int] = []

        def refresh_hosted(now: int, *, force: bool = False) -> bool:
            calls.append(now)
            if len(calls) == 1:
                raise ValueError("a feed row that did not decode")
            return False

        monkeypatch.setattr(hub.trust, "refresh_hosted", refresh_hosted)
        monkeypatch.setattr(upkeep, "HOSTED_FEED_POLL", 0)
        watch = hub._spawn(hub._watch_hosted())
        await until(lambda: len(calls) >= 3 or watch.done())
        assert not watch.done(), "the hosted watch died of one unexpected error"
        assert len(calls) >= 3

    run_memnet(test, tmp_path)


def test_one_failing_service_holds_back_no_other_services_maintenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 62m, lifecycle 2: the maintenance round maintained the services one after the
    other with no guard between them: one whose `maintain` raised (the broker's re-read of the
    stored bundles is unguarded: StorageError while node.db is busy) skipped every service
    after it in node.json's order that round, and every round while it kept failing: the relay
    then never re-decided its owners (a revoked owner's relay kept forwarding) nor freed the
    names past their grace; the authority's expired tickets were never forgotten."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        services = list(hub.host.services.values())
        assert len(services) >= 2, [s.name for s in services]
        maintained: list[str] = []

        async def failing(now: int) -> None:
            raise StorageError("node.db: database is locked")

        def recording(name: str) -> Any:
            async def maintain(now: int) -> None:
                maintained.append(name)

            return maintain

        monkeypatch.setattr(services[0], "maintain", failing)
        for service in services[1:]:
            monkeypatch.setattr(service, "maintain", recording(service.name))
        await hub.maintain()  # the round logs the failure and goes on
        assert maintained == [s.name for s in services[1:]]

    run_memnet(test, tmp_path)


def test_a_node_restarted_after_its_feeds_went_stale_syncs_them_at_once(tmp_path: Path) -> None:
    """Review 62m, lifecycle 3: a node restarted after being down longer than a feed stays
    fresh (a crash restarted by hand, a reboot) ran its first maintenance round only
    MAINTENANCE_SECONDS (30 s) after its start, and nothing else synced the feeds of the
    authorities it trusts: for those 30 s it refused every member of them (stale feed: fail
    closed, but the node had not come back), and left its credentials and announcements
    pending as long."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", listen=("b", 5000))
        await b.enroll(net.ticket(), "b")
        a = await net.member("a")
        to_b = "/tcp/b:5000/service/echo"
        assert await a.send_message(to_b, "before") == "before"
        await b.stop()
        net.runtimes.remove(b)
        net.clock.advance(FEED_STALENESS + 1)  # down for longer than a feed stays fresh
        assert net.hub is not None
        await net.hub.maintain()  # the rounds of the nodes up meanwhile (their feeds synced)
        await a.maintain()
        again = NodeRuntime(b.node, clock=net.clock, transport=net.transport("b"))
        net.runtimes.append(again)
        await again.start(("b", 5000))
        authority = net.authority.identifier
        await until(lambda: not stale(again.feeds[authority], net.clock.now()), timeout=3)
        assert await a.send_message(to_b, "after") == "after"

    run_memnet(test, tmp_path)


def stale(feed: VerifiedFeed, now: int) -> bool:
    return now - feed.issued_at > FEED_STALENESS


def test_a_reconnects_catch_up_goes_on_past_any_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 62m, lifecycle 4: after a link came back, its catch-up (credentials refreshed,
    then rotations announced) caught only TrothError: any other failure of the refresh ended
    the task, the pending announcements waited for the next round, and the error surfaced
    only as "Task exception was never retrieved"."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        announced: list[str | None] = []

        async def refresh_credentials(**_: Any) -> int:
            raise RuntimeError("a bug in one refresh")

        async def announce_rotations(ref: str | None = None) -> list[dict[str, Any]]:
            announced.append(ref)
            return []

        monkeypatch.setattr(hub, "refresh_credentials", refresh_credentials)
        monkeypatch.setattr(hub, "announce_rotations", announce_rotations)
        await hub._catch_up()
        assert announced == [None]

    run_memnet(test, tmp_path)
