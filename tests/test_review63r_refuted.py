"""Review 63r: crashes and reconnection, attacks that did not work (each a real attempt that
fails if the defence it names breaks).

1. A relay node that accepts TCP and never answers (a SIGSTOPped process: the kernel accepts,
   nobody reads), kept in a restarted node's relay book, does not wedge the node's other link:
   its hub, killed and started again on the same port, gets its relay back at once while the
   tarpit's attempt still hangs in its handshake (a link's attempts run in a task each).
2. A hub down past its members' credential lifetime (3 h, credentials last 1 h) and the
   feed's staleness: the relayed member reconnects without a restart or an operator, its
   credential refreshed and its relay created again.
3. A hub killed and started again at random moments, some during the member's restore (its
   relay being created, its feed synced): the link ends connected and the relay up.
4. A lease revocation killed as any of its SQLite statements starts: reopened, no false
   restore; the lease is ACTIVE (nothing committed) or REVOKED with its upstream role
   revoked (`LeaseState.REVOKING` is durable and the recovery's sweep ends it), and the
   member revokes it again.
5. A lease renewal killed anywhere: the lease stays ACTIVE with its old end (nothing
   acknowledged is lost, nothing half-extended is visible), no false restore, and the member
   renews it afterwards.
6. A feed sync killed anywhere: the held feed is the old one or the new one (one transaction
   per page), the rollback guard is not tripped, and the next sync completes.
7. A relayed member restarted (its own crash) while its hub is down too: its kept relay's
   link retries from the start, and once the hub is back the relay answers again, no operator
   in between.
8. A rotation's announcement killed anywhere (the authority took it, the holder's mark not
   committed, or neither): announced again, the authority answers with the same entry (no
   second supersession in its feed), and nothing stays pending.
9. A stale trusted authority at the hub's address (the member enrolled with an authority
   whose node listened there before the hub's did, and still trusts it) does not take the
   link's pin: the link is pinned to the authority enrolled with last at that address (the
   one that answers there), so after the hub's crash and restart on the same port the link
   comes back and its relay is created again (pinned to the stale one, every attempt would be
   refused and the connection to the hub dropped).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import NOW
from tests.support.enroll import acme_and_agent, enroll_in_process
from tests.support.killed import KILLS, killed_after
from tests.support.leases import RemoteStub, make_world, open_broker
from tests.support.nodes import HUB, MemNet, run_memnet
from tests.test_reconnect import (
    FAST,
    TO_B,
    crash_and_restart_hub,
    link_state,
    stop_all,
    tcp_node,
    ticket,
    until,
)
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.faults import CRASH_EXIT_CODE
from troth.node import Node, init_node, open_node
from troth.node.authorities import announce_here, sync_from
from troth.node.links import LinkState
from troth.node.node import node_dir
from troth.node.own_relays import OwnRelays
from troth.node.runtime import NodeRuntime
from troth.secrets import AllowListPolicy, LeaseState
from troth.secrets.broker import Broker
from troth.secrets.engine import SecretSpec
from troth.secrets.lease import SecretValue
from troth.storage import SqliteDatabase


def _states(runtime: NodeRuntime) -> dict[str, LinkState]:
    return {row.route: row.state for row in runtime.link_rows()}


def test_a_tarpit_relay_node_does_not_wedge_the_hubs_reconnect(tmp_path: Path) -> None:
    """Attack 1 (over TCP on loopback)."""

    async def main() -> None:
        held: list[asyncio.StreamWriter] = []

        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # accepted, read, never answered, never closed
            while await reader.read(65536):
                pass

        tarpit = await asyncio.start_server(swallow, "127.0.0.1", 0)
        tarpit_at = f"/tcp/127.0.0.1:{tarpit.sockets[0].getsockname()[1]}"
        init_node("hub", home=tmp_path)
        hub_node = open_node("hub", home=tmp_path)
        hub_node.create_authority("hub", now=int(time.time()))
        hub = NodeRuntime(hub_node)
        await hub.start(("127.0.0.1", 0))
        assert hub.listening is not None
        port = hub.listening[1]
        at = f"/tcp/127.0.0.1:{port}"
        b = await tcp_node(tmp_path, "b", backoff=FAST)
        try:
            await b.enroll(ticket(hub, at, **{"troth.relay": "b"}), "b")
            await b.create_relay("b", at)
            await b.stop()
            b.node.close()
            book = OwnRelays(node_dir(tmp_path, "b") / "own-relays.json")
            hub_id = hub_node.authority().identifier
            book.save({**book.load(), f"{tarpit_at}/relay/b": hub_id})
            b = NodeRuntime(open_node("b", home=tmp_path), backoff=FAST)
            await b.start()  # both kept relays resumed: the tarpit's handshake hangs (10 s)
            await until(lambda: _states(b).get(at) is LinkState.CONNECTED, 5)
            assert _states(b)[tarpit_at] is LinkState.CONNECTING
            await hub.tcp.close()  # the hub killed: its connections drop
            await hub.stop()
            await until(lambda: _states(b)[at] is not LinkState.CONNECTED)
            hub = NodeRuntime(hub_node)
            await hub.start(("127.0.0.1", port))
            await until(lambda: _states(b)[at] is LinkState.CONNECTED, 5)
            assert hub.status()["services"]["relay"]["b"]["state"] == "up"
            assert _states(b)[tarpit_at] is LinkState.CONNECTING  # still in its handshake
        finally:
            await stop_all(b, hub)
            tarpit.close()
            for writer in held:
                writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_hub_down_past_the_credentials_lifetime_gets_its_member_back(tmp_path: Path) -> None:
    """Attack 2."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)

        async def down() -> None:
            await until(lambda: link_state(b) is not LinkState.CONNECTED)
            await until(lambda: b.link_rows()[0].attempts >= 2)
            net.clock.advance(3 * 3600)  # b's credential and its copy of the feed run out

        await crash_and_restart_hub(net, down=down)
        await until(lambda: link_state(b) is LinkState.CONNECTED, 8)
        a = await net.member("a")
        assert await a.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)


def test_a_hub_killed_at_random_moments_ends_with_the_relay_up(tmp_path: Path) -> None:
    """Attack 3."""
    rng = random.Random(63)

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        a = await net.member("a")

        async def down() -> None:
            await asyncio.sleep(rng.random() * 0.05)

        for _ in range(8):  # not waiting for b in between: some kills fall in its restore
            await asyncio.sleep(rng.random() * 0.1)
            await crash_and_restart_hub(net, down=down)

        def relay_up() -> bool:
            assert net.hub is not None
            relay = net.hub.status()["services"]["relay"].get("b")
            return (
                link_state(b) is LinkState.CONNECTED
                and relay is not None
                and (relay["state"] == "up")
            )

        await until(relay_up, 5)
        assert await a.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)


class _LoggedStub(RemoteStub):
    """A remote engine whose revocations are written to a file (a forked child's too)."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log

    def revoke(self, spec: SecretSpec, ref: str | None, upstream: SecretValue) -> None:
        with self.log.open("a") as out:
            out.write(f"{ref}\n")
        super().revoke(spec, ref, upstream)


def _sampled(total: int, count: int = 13) -> list[int]:
    """`count` statement numbers spread over `total`, the last two among them."""
    spread = {1 + (total - 1) * i // (count - 1) for i in range(count)}
    return sorted(spread | {total - 1, total})


def test_a_lease_revocation_killed_anywhere_ends_revoked_upstream(tmp_path: Path) -> None:
    """Attack 4."""
    path, log, saved = tmp_path / "d" / "node.db", tmp_path / "revoked.log", tmp_path / "saved"
    path.parent.mkdir()
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})

    def broker(now: int) -> tuple[SqliteDatabase, Broker]:
        db, opened = open_broker(path, now=now, policy=policy)
        opened.engines[RemoteStub.kind] = _LoggedStub(log)
        return db, opened

    db, first = broker(NOW)
    first.put_secret("s", RemoteStub.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    lease_id = first.issue(world.credential_a(), "s", now=NOW).lease_id
    first.close()
    db.close()
    shutil.copytree(path.parent, saved)

    def revoke() -> None:
        db, opened = broker(NOW + 1)
        opened.revoke(world.credential_a(), lease_id, now=NOW + 1)
        opened.close()
        db.close()

    assert killed_after(0, revoke) == 0
    ends = set()
    for point in _sampled(KILLS[-1]):
        shutil.rmtree(path.parent)
        shutil.copytree(saved, path.parent)
        log.write_text("")
        assert killed_after(point, revoke) == CRASH_EXIT_CODE, point
        db, reopened = broker(NOW + 2)
        assert reopened.restored is None, point
        reopened.recover(NOW + 2)
        leases = reopened.leases(world.credential_a(), include_ended=True)
        (state,) = [lease.state for lease in leases]
        assert state in (LeaseState.ACTIVE, LeaseState.REVOKED), (point, state)
        if state is LeaseState.REVOKED:
            # by the killed run, or again by the recovery's sweep (idempotent upstream)
            assert set(log.read_text().split()) == {f"role_{leases[0].handle}"}, point
        ends.add(state)
        reopened.revoke(world.credential_a(), lease_id, now=NOW + 3)
        (lease,) = reopened.leases(world.credential_a(), include_ended=True)
        assert lease.state is LeaseState.REVOKED, point
        assert log.read_text().split(), point  # revoked upstream, whichever run did it
        reopened.close()
        db.close()
    assert ends == {LeaseState.ACTIVE, LeaseState.REVOKED}


def test_a_lease_renewal_killed_anywhere_keeps_its_end_and_renews(tmp_path: Path) -> None:
    """Attack 5."""
    path, saved = tmp_path / "d" / "node.db", tmp_path / "saved"
    path.parent.mkdir()
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"s": None}})

    def broker(now: int) -> tuple[SqliteDatabase, Broker]:
        db, opened = open_broker(path, now=now, policy=policy)
        opened.engines[RemoteStub.kind] = RemoteStub()
        return db, opened

    db, first = broker(NOW)
    first.put_secret("s", RemoteStub.kind, {"scopes": ["x"], "server": "a"}, b"admin", now=NOW)
    issued = first.issue(world.credential_a(), "s", now=NOW)
    lease_id, ends_at = issued.lease_id, issued.lease.expires_at
    first.close()
    db.close()
    shutil.copytree(path.parent, saved)

    def renew() -> None:
        db, opened = broker(NOW + 100)
        opened.renew(world.credential_a(), lease_id, now=NOW + 100)
        opened.close()
        db.close()

    assert killed_after(0, renew) == 0
    for point in _sampled(KILLS[-1]):
        shutil.rmtree(path.parent)
        shutil.copytree(saved, path.parent)
        assert killed_after(point, renew) == CRASH_EXIT_CODE, point
        db, reopened = broker(NOW + 101)
        assert reopened.restored is None, point
        reopened.recover(NOW + 101)
        (lease,) = reopened.leases(world.credential_a(), include_ended=True)
        assert (lease.state, lease.expires_at) == (LeaseState.ACTIVE, ends_at), point
        renewed, _ = reopened.renew(world.credential_a(), lease_id, now=NOW + 102)
        assert renewed.expires_at > ends_at, point
        reopened.close()
        db.close()


def test_a_feed_sync_killed_anywhere_holds_the_old_feed_or_the_new(tmp_path: Path) -> None:
    """Attack 6."""
    clock = FixedClock(NOW + 5)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _, one_use):
        enroll_in_process(agent, "agent", authority, one_use, clock)
        acme = authority.identifier
        sync_from(agent, authority, now=NOW + 5)
        held = agent.wallet.feed_since(acme)
        for i in range(40):
            authority.revoke_credential(bytes([i]) * 32, now=NOW + 6)
    saved = tmp_path.parent / f"{tmp_path.name}-saved"
    shutil.copytree(tmp_path, saved)

    def sync() -> None:
        with open_node("acme", home=tmp_path) as host, open_node("agent", home=tmp_path) as node:
            sync_from(node, host.authority(), now=NOW + 7)

    assert killed_after(0, sync) == 0
    for point in _sampled(KILLS[-1], 7):
        shutil.rmtree(tmp_path)
        shutil.copytree(saved, tmp_path)
        assert killed_after(point, sync) == CRASH_EXIT_CODE, point
        with open_node("acme", home=tmp_path) as host, open_node("agent", home=tmp_path) as node:
            assert node.wallet.feed_since(acme) in (held, held + 40), point
            assert node.identities.check_restored(NOW + 8) is None, point
            feed = sync_from(node, host.authority(), now=NOW + 8)
            assert feed.count == held + 40, point
            assert bytes([39]) * 32 in feed.revoked_credentials, point


def test_a_member_restarted_while_its_hub_is_down_gets_its_relay_back(tmp_path: Path) -> None:
    """Attack 7."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        a = await net.member("a")
        restarted: list[NodeRuntime] = []

        async def down() -> None:  # b goes too, and starts again while the hub is away
            await b.stop()
            b.node.close()
            node = open_node("b", home=net.home)
            net.opened.append(node)
            again = NodeRuntime(node, clock=net.clock, transport=net.transport("b"), backoff=FAST)
            net.runtimes.append(again)
            await again.start()
            restarted.append(again)
            await until(lambda: again.link_rows()[0].attempts >= 2)
            (row,) = again.link_rows()
            assert (row.relays, row.state) == (("b",), LinkState.RECONNECTING)

        await crash_and_restart_hub(net, down=down)
        await until(lambda: link_state(restarted[0]) is LinkState.CONNECTED, 5)
        assert await a.send_message(TO_B, "after") == "after"

    run_memnet(test, tmp_path)


def test_an_announcement_killed_anywhere_is_sent_again_without_a_second_entry(
    tmp_path: Path,
) -> None:
    """Attack 8."""
    clock = FixedClock(NOW + 5)
    with acme_and_agent(tmp_path, NOW) as (authority, agent, _, one_use):
        enroll_in_process(agent, "agent", authority, one_use, clock)
        agent.identities.rotate("agent", now=NOW + 6)
        entries = authority.store.revocation_tip()[0]
    saved = tmp_path.parent / f"{tmp_path.name}-saved"
    shutil.copytree(tmp_path, saved)

    def announce() -> None:
        with open_node("agent", home=tmp_path) as node:
            announce_here(node, "agent", now=NOW + 7)

    assert killed_after(0, announce) == 0
    taken = set()
    for point in _sampled(KILLS[-1], 7):
        shutil.rmtree(tmp_path)
        shutil.copytree(saved, tmp_path)
        assert killed_after(point, announce) == CRASH_EXIT_CODE, point
        with open_node("acme", home=tmp_path) as host:
            taken.add(host.authority().store.revocation_tip()[0] - entries)
        with open_node("agent", home=tmp_path) as node:
            assert node.identities.check_restored(NOW + 8) is None, point
            done, remote = announce_here(node, "agent", now=NOW + 8)
            assert remote == [], point
            assert all(row.error is None for row in done), (point, done)
            assert node.wallet.unannounced("agent")[1] == [], point
        with open_node("acme", home=tmp_path) as host:
            assert host.authority().store.revocation_tip()[0] == entries + 1, point
    assert taken == {0, 1}  # some kills fell after the authority took it


def test_a_stale_authority_at_the_hubs_address_does_not_take_the_link(tmp_path: Path) -> None:
    """Attack 9."""
    shared = "/tcp/shared:4000"

    async def test(net: MemNet) -> None:
        def authority_node(name: str) -> Callable[[Node], None]:
            def prepare(node: Node) -> None:
                node.create_authority(name, now=net.clock.now())

            return prepare

        def ticket_of(runtime: NodeRuntime, **attributes: str) -> str:
            authority = runtime.node.authority()
            return str(
                authority.create_ticket(
                    creator=authority.identifier,
                    attributes=Attributes({"agents.team": "x", **attributes}),
                    address=shared,
                    now=net.clock.now(),
                )
            )

        before = await net.node("before", listen=("shared", 4000), prepare=authority_node("before"))
        b = await net.node("b", backoff=FAST)
        await b.enroll(ticket_of(before), "b")
        await before.tcp.close()  # its node goes; another authority's node takes the port
        await before.stop()
        hub = await net.node("now", listen=("shared", 4000), prepare=authority_node("now"))
        await b.enroll(ticket_of(hub, **{"troth.relay": "b"}), "b")
        await b.create_relay("b", shared)
        now_id = str(hub.node.authority().identifier)
        assert [(r.authority, r.peer) for r in b.link_rows()] == [(now_id, now_id)]
        await hub.tcp.close()  # the hub crashes and comes back on the same port
        await hub.stop()
        again = NodeRuntime(hub.node, clock=net.clock, transport=net.transport("shared"))
        net.runtimes.append(again)
        await again.start(("shared", 4000))

        def relay_up() -> bool:
            relay = again.status()["services"]["relay"].get("b")
            return (
                link_state(b) is LinkState.CONNECTED
                and relay is not None
                and (relay["state"] == "up")
            )

        await until(relay_up, 5)

    run_memnet(test, tmp_path)
