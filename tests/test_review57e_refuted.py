"""Review 57e: crash and reconnect attacks on nodes and enrollment that did not work (each test
fails if its defence breaks), with real processes over TCP on loopback where the attack is a
process's death or pause."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import enroll_driver
from tests.support.enroll import acme_ticket
from tests.support.forked import ForkedCall
from tests.support.nodes import HUB, MemNet, ask_authority, run_memnet
from tests.support.relayed import relayed_b
from tests.test_reconnect import TO_B, crash_and_restart_hub, link_state, until
from tests.test_reconnect_daemon import HANDSHAKE, _nodes, relays_up, send_here, until_sent
from tests.test_resilience_enrollment import Hub, hub, prepare  # noqa: F401
from troth.authority.client import enroll_request
from troth.authority.tickets import Ticket, new_code
from troth.enrollment import enrollment, request_of
from troth.errors import RemoteError
from troth.faults import CRASH_EXIT_CODE
from troth.limits import ENROLL_REQUEST_SECONDS, ENROLL_REQUESTS_BURST
from troth.node import init_node, open_node
from troth.node.daemon import control, node_status
from troth.node.links import LinkState
from troth.node.membership import RESUME_AFTER, RESUME_BACKOFF
from troth.storage import SqliteAuthorityStore

KEEPALIVE = 0.5  # every daemon's in the partition test: silence is noticed after 3 * KEEPALIVE
MAX_DELAY = 1.0  # every daemon's reconnect backoff cap there
LIMITED = "too many enroll and refresh requests"


def _enroll_as(node: str, ticket: str) -> subprocess.CompletedProcess[str]:
    """tests.support.enroll_driver for identity `node` of node `node` (created here), in a
    process of its own."""
    init_node(node)
    with open_node(node) as opened:
        opened.identities.create(now=int(time.time()), name=node)
    return _driven(node, node, ticket)


def _agent_enrolls(ticket: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
    """tests.test_resilience_enrollment's `driver` (identity agent of node agent), forked: its
    exit code checked unless `code` is None."""
    done = _driven("agent", "agent", ticket)
    assert code is None or done.returncode == code, (done.returncode, done.stderr)
    return done


def _redemptions(identity: str) -> int:
    with open_node(identity) as member, open_node("acme") as acme:
        digest = member.identities.find(identity).identifier
        return SqliteAuthorityStore(acme.db).count_redemptions(digest)


def test_a_redeemed_ticket_whose_answer_a_crash_lost_is_not_redeemed_by_another(
    hub: Hub,  # noqa: F811 - the fixture imported above
    troth_home: Path,
) -> None:
    """The hub is SIGKILLed once it committed agent's one-use redemption (its answer lost) and
    started again: mallory, on another node, holding the same ticket text, is refused (the use
    is gone, and the repeat answers only the identity that redeemed it); agent's resumption
    completes with no second use."""
    setup = prepare(hub.route)
    hub.start(crash="authority.enroll.after-commit")
    assert _agent_enrolls(setup.ticket, code=None).returncode not in (0, CRASH_EXIT_CODE)
    hub.wait_dead(troth_home)
    hub.start()
    stolen = _enroll_as("mallory", setup.ticket)
    assert stolen.returncode != 0
    assert "ticket unknown" in stolen.stderr, stolen.stderr
    assert _redemptions("mallory") == 0
    _agent_enrolls("--resume")
    setup.check_enrolled_once()


def test_a_ticket_a_crash_left_unused_goes_to_one_identity_and_the_other_lets_go(
    hub: Hub,  # noqa: F811 - the fixture imported above
    troth_home: Path,
) -> None:
    """The hub is SIGKILLed before it committed agent's redemption: the ticket's use is not
    taken. mallory redeems it; agent's resumption is then refused for good, and its pending
    record is deleted (not sent again for a week): one use, one member."""
    setup = prepare(hub.route)
    hub.start(crash="authority.enroll.before-commit")
    assert _agent_enrolls(setup.ticket, code=None).returncode not in (0, CRASH_EXIT_CODE)
    hub.wait_dead(troth_home)
    assert setup.state() == (0, 1, 0)
    hub.start()
    assert _enroll_as("mallory", setup.ticket).returncode == 0
    resumed = _agent_enrolls("--resume", code=None)
    assert resumed.returncode != 0
    assert "ticket unknown" in resumed.stderr, resumed.stderr
    assert setup.state() == (0, 0, 0)
    assert _redemptions("mallory") == 1


def test_a_rate_limited_resumption_is_kept_and_completes_once_the_budget_refills(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reconnect storm spends the enroll budget of agent's network (a stranger's made-up
    codes from 10.8.8.9) just as agent's node resumes the enrollment a crash interrupted before
    its request reached the authority (agent is no member yet: a member's resumption is
    charged to its own budget since review 57e, storm 1): the resumption is refused as rate
    limited, which is not a refusal for good: the record is kept, backed off, and completes at
    a later round, with the one redemption."""

    async def test(net: MemNet) -> None:
        agent = await net.node("agent", host="10.8.8.1")
        node = agent.node
        steps = enrollment(node.identities, node.wallet, "agent", net.ticket(), clock=net.clock)
        request_of(steps)  # pending; killed before the request was sent
        steps.close()
        storm = await net.node("storm", host="10.8.8.9")
        bogus = Ticket(new_code(), net.authority.history(), HUB)
        request = enroll_request(storm.node.identities, "storm", bogus, now=net.clock.now())
        net.clock.advance(RESUME_AFTER)
        for _ in range(ENROLL_REQUESTS_BURST):
            with pytest.raises(RemoteError):
                await ask_authority(storm, net, "enroll", request)
        await agent.maintain()
        assert node.wallet.held("agent") == []
        assert len(node.wallet.pending_enrollments("agent")) == 1  # kept, backed off
        assert LIMITED in caplog.text
        assert len(agent.resumption.waits) == 1
        net.clock.advance(RESUME_BACKOFF + ENROLL_REQUEST_SECONDS)
        await agent.maintain()
        (held,) = node.wallet.held("agent")
        assert held.authority == net.authority.identifier.digest
        assert node.wallet.pending_enrollments("agent") == []
        member = node.identities.find("agent").identifier
        assert net.authority.store.count_redemptions(member) == 1

    run_memnet(test, tmp_path)


@pytest.fixture
def paused_nodes(troth_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """tests.test_reconnect_daemon's hub, a, b1 and b2, every daemon with a short keepalive and
    backoff cap. Yields the hub's route."""
    monkeypatch.setenv("TROTH_CHANNELS_KEEPALIVE_INTERVAL", str(KEEPALIVE))
    monkeypatch.setenv("TROTH_RECONNECT_MAX_DELAY", str(MAX_DELAY))
    yield from _nodes()


def _link_lost(home: Path, name: str) -> Callable[[], bool]:
    def lost() -> bool:
        status = node_status(home, name)
        links = control(home, name, "status", {}, status=status)["links"]
        return bool(links[0]["state"] != "connected")

    return lost


def _open_channels(home: Path, name: str) -> set[str]:
    """The ids of node `name`'s open channels (`troth channel list`, asked in this process)."""
    rows = control(home, name, "channel.list", {}, status=node_status(home, name))
    return {str(row["id"]) for row in rows if row["state"] == "open"}


def _until(condition: Callable[[], bool], within: float, what: str) -> None:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            pytest.fail(f"{what} not within {within} s")
        time.sleep(0.1)


@pytest.mark.parametrize("paused", ["hub", "b1"])
def test_a_paused_node_gets_its_relays_back_once_resumed(
    paused_nodes: str, troth_home: Path, paused: str
) -> None:
    """A partition: a daemon is paused (SIGSTOP), answering nothing and closing nothing (the
    kernel still accepts connections to it). The hub paused, b1 and b2 notice the silence by
    the keepalive; b1 paused, the hub does and lets its relay go. Resumed (SIGCONT), the
    resumed node finds the old channels silent past its own keepalive timeout and closes
    them, and the new channels' relay names stay up: the relays answer within the documented
    bound (docs/protocols.md, "Reconnecting") and keep answering."""
    route = paused_nodes
    # every send in this process (send_here: an interpreter started for each was most of their
    # time, 72f ci); the daemons are real processes as before
    until_sent(f"{route}/relay/b1/service/echo", "before", 5, send_here)
    pid = node_status(troth_home, paused)["pid"]
    old = _open_channels(troth_home, paused)  # what the paused node finds silent once resumed
    assert old
    os.kill(pid, signal.SIGSTOP)
    try:  # the keepalive noticed the silence
        if paused == "hub":
            for name in ("b1", "b2"):
                _until(_link_lost(troth_home, name), 10, f"{name}'s link lost")
        else:
            _until(lambda: not relays_up({"b1"}), 10, "b1's relay down")
    finally:
        os.kill(pid, signal.SIGCONT)
    for name in ("b1", "b2"):
        until_sent(f"{route}/relay/{name}/service/echo", name, MAX_DELAY + HANDSHAKE, send_here)

    def old_ones_closed() -> bool:  # up all along, as the resumed node closes its old channels
        assert relays_up({"b1", "b2"})  # (waited for as it happens: a fixed window of 6 *
        return not old & _open_channels(troth_home, paused)  # KEEPALIVE before, 72f ci)

    _until(old_ones_closed, 10 * KEEPALIVE + HANDSHAKE, "the resumed node's old channels closed")
    assert relays_up({"b1", "b2"})  # and after
    until_sent(f"{route}/relay/b1/service/echo", "still", 1, send_here)


ALLOWED = {(0, 0, 0), (0, 1, 0), (0, 1, 1), (1, 0, 1)}
"""(credentials held, enrollments pending, redemptions) an enrolling holder may be killed in."""


def _member_state(ref: str) -> tuple[int, int, int]:
    with open_node("agent") as holder, open_node("acme") as acme:
        digest = holder.identities.find(ref).identifier
        held = len(holder.wallet.held(ref))
        pending = len(holder.wallet.pending_enrollments(ref))
        return held, pending, SqliteAuthorityStore(acme.db).count_redemptions(digest)


def _drive(node: str, identity: str, ticket: str) -> None:
    """tests.support.enroll_driver's run (in a forked process)."""
    print(json.dumps(asyncio.run(enroll_driver.run(node, identity, ticket))))


def _driver(identity: str, ticket: str) -> ForkedCall:
    """tests.support.enroll_driver for `identity` of node agent, started in a process of its
    own, forked from this one (an interpreter's start and imports were most of its time)."""
    return ForkedCall(_drive, "agent", identity, ticket, quiet=True)


def _driven(node: str, identity: str, ticket: str) -> subprocess.CompletedProcess[str]:
    """tests.support.enroll_driver's run in a forked process, once it ended."""
    child = ForkedCall(_drive, node, identity, ticket)
    out, err = child.communicate(90)
    return subprocess.CompletedProcess(["enroll_driver"], child.wait(), out, err)


def test_a_holder_killed_at_random_moments_ends_enrolled_once(
    hub: Hub,  # noqa: F811 - the fixture imported above
) -> None:
    """The holder's process (enrolling over TCP with the running hub) is SIGKILLed, six
    identities in turn, at a random moment (up to 50 ms) after its pending record committed,
    wherever it is (the request in flight, the answer half stored, an SQLite commit half
    written): each kill leaves a state the recovery rules name (docs/storage.md), node.db
    whole, and the next run completes the enrollment with one redemption and one credential
    held."""
    setup = prepare(hub.route)
    hub.start()
    rng = random.Random(os.environ.get("TROTH_TEST_SEED", "57"))
    database = troth_home_path() / "nodes" / "agent" / "node.db"
    for index in range(6):
        ref = f"agent-{index}"
        with open_node("agent") as holder, open_node("acme") as acme:
            holder.identities.create(now=int(time.time()), name=ref)
            ticket = acme_ticket(acme.authority(), int(time.time()))
        text = str(Ticket(ticket.code, ticket.authority_history, hub.route))
        child = _driver(ref, text)
        while not _pending_rows(database) and child.poll() is None:  # its record committed
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.05))  # a random moment of the exchange and the commit
        child.send_signal(signal.SIGKILL)
        child.communicate(10)
        state = _member_state(ref)
        assert state in ALLOWED, (index, state)
        with contextlib.closing(sqlite3.connect(database)) as opened:
            assert opened.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        if state[0] == 0:
            again = ["--resume"] if state[1] else [text]
            done = _driven("agent", ref, *again)
            assert done.returncode == 0, (index, state, done.stderr)
        assert _member_state(ref) == (1, 0, 1), (index, state)
    assert setup.state() == (0, 0, 0)  # the set-up's own identity was never enrolled


def _pending_rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as database:
        (count,) = database.execute("SELECT count(*) FROM pending_enrollments").fetchone()
        return int(count)


def troth_home_path() -> Path:
    return Path(os.environ["TROTH_HOME"])


def _rows(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as database:
        (count,) = database.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        return int(count)


def test_an_authority_killed_amid_racing_redemptions_gives_no_use_twice(
    hub: Hub,  # noqa: F811 - the fixture imported above
    troth_home: Path,
) -> None:
    """Five identities race to redeem one three-use ticket over TCP, each in a process of its
    own, and the hub is SIGKILLed as soon as its first redemption is committed (the others in
    flight); started again, each holder enrolls again with the same ticket. At most three
    identities are members, each holding the one credential its redemption issued; every other
    is refused (`ticket unknown`) and holds nothing, nothing pending."""
    setup = prepare(hub.route)
    hub.start()
    refs = [f"racer-{index}" for index in range(5)]
    with open_node("agent") as holder, open_node("acme") as acme:
        for ref in refs:
            holder.identities.create(now=int(time.time()), name=ref)
        made = acme_ticket(acme.authority(), int(time.time()), uses=3)
    ticket = str(Ticket(made.code, made.authority_history, hub.route))
    racers = [_driver(ref, ticket) for ref in refs]
    acme_db = troth_home / "nodes" / "acme" / "node.db"
    while not _rows(acme_db, "redemptions") and any(r.poll() is None for r in racers):
        time.sleep(0.002)
    pid = node_status(troth_home, "acme")["pid"]
    os.kill(pid, signal.SIGKILL)
    hub.wait_dead(troth_home)
    for racer in racers:
        racer.communicate(30)
    hub.start()
    members = []
    for ref in refs:
        done = _driven("agent", ref, ticket)
        state = _member_state(ref)
        if done.returncode == 0:
            assert state == (1, 0, 1), (ref, state)
            members.append(ref)
        else:
            assert "ticket unknown" in done.stderr, (ref, done.stderr)
            assert state == (0, 0, 0), (ref, state)
    assert 1 <= len(members) <= 3
    assert _rows(acme_db, "redemptions") == len(members)
    assert setup.state() == (0, 0, 0)


@pytest.mark.parametrize("jump", [2 * 24 * 3600, 30 * 24 * 3600])
def test_a_clock_jumped_forward_loses_the_relay_only_until_a_round(
    tmp_path: Path, jump: int
) -> None:
    """Every node's clock jumps forward (two days, a month: past every credential's expiry,
    the feeds' staleness, the resumption's give-up time). After one maintenance round each
    (the hub first: it signs its feed anew) b holds a fresh credential, its link comes back on
    its own, and a message reaches it through its relay again."""

    async def test(net: MemNet) -> None:
        b = await relayed_b(net)
        a = await net.member("a")
        assert await a.send_message(TO_B, "before") == "before"
        net.clock.advance(jump)
        assert net.hub is not None
        for runtime in (net.hub, b, a):
            await runtime.maintain()
        (fresh, *_) = b.node.wallet.held("b")
        assert fresh.expires_at > net.clock.now()
        await until(lambda: link_state(b) is LinkState.CONNECTED)
        assert await a.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)


def test_revocations_reach_a_member_across_its_authoritys_rotation(tmp_path: Path) -> None:
    """The hub stops, its authority rotates and revokes a credential while it is down, starts
    again and revokes another: after two maintenance rounds each (the first shows the member
    its authority's rotation: relink 1) b's copy of the feed, verified page by page under the
    rotated history, holds the revocations from before, during and after, and b is reachable
    through its relay again."""

    async def test(net: MemNet) -> None:
        b = await relayed_b(net)
        a = await net.member("a")
        revoked = [bytes([n]) * 32 for n in (1, 2, 3)]
        net.authority.revoke_credential(revoked[0], now=net.clock.now())
        await b.maintain()
        hub_node = net.hub
        assert hub_node is not None

        async def rotate_and_revoke() -> None:
            hub_node.node.identities.rotate("hub", now=net.clock.now())
            net.authority.revoke_credential(revoked[1], now=net.clock.now())

        await crash_and_restart_hub(net, down=rotate_and_revoke)
        net.authority.revoke_credential(revoked[2], now=net.clock.now())
        assert net.hub is not None
        for _ in range(2):
            for runtime in (net.hub, b, a):
                await runtime.maintain()
        assert set(revoked) <= b.feeds[net.authority.identifier].revoked_credentials
        await until(lambda: link_state(b) is LinkState.CONNECTED)
        assert await a.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)
