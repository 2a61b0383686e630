"""Nodes on real TCP (127.0.0.1, ephemeral ports), in one event loop: enrollment across nodes,
channels direct and through a relay, the relay-sees-no-plaintext test, default deny, frame
limits, stalls and timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from troth import limits
from troth.authority.client import revoke_request
from troth.authority.requests import MAX_REQUEST_BYTES
from troth.clock import FixedClock
from troth.credentials import Attributes, ChainVerifier, TrustPolicy, verify_page
from troth.credentials.wallet import authority_changes, needs_refresh, superseded_changes
from troth.encoding import cbor
from troth.errors import (
    ChannelError,
    ChannelFailure,
    CredentialError,
    CredentialFailure,
    Denied,
    RemoteError,
    RoutingError,
)
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.node.access import AnyAuthenticated
from troth.node.channels import ChannelLimits
from troth.node.runtime import ECHO, NodeRuntime
from troth.node.services import Method, RequestContext, call
from troth.node.services.authority import FEED_REUSE
from troth.routing import Address, RoutedMessage, parse_route
from troth.transport import frame
from troth.vault.ephemeral import EphemeralKey

MARKER = "PLAINTEXT-MARKER-7f3a"


@dataclass
class Net:
    home: Path
    hub: NodeRuntime
    address: str
    nodes: dict[str, NodeRuntime]
    opened: list[Node]

    async def node(self, name: str, *, listen: bool = False, timeout: float = 10.0) -> NodeRuntime:
        init_node(name, home=self.home)
        node = open_node(name, home=self.home)
        self.opened.append(node)
        runtime = NodeRuntime(node, limits=ChannelLimits(handshake_timeout=timeout))
        await runtime.start(("127.0.0.1", 0) if listen else None)
        self.nodes[name] = runtime
        return runtime

    def ticket(self, **attributes: str) -> str:
        authority = self.hub.node.authority()
        return str(
            authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({"agents.team": "support", **attributes}),
                address=self.address,
                now=int(time.time()),
            )
        )


def run(
    test: Callable[[Net], Awaitable[None]],
    home: Path,
    *,
    hub_timeout: float = 10.0,
    budget: float = 60,
) -> None:
    async def main() -> None:
        init_node("hub", home=home)
        hub_node = open_node("hub", home=home)
        hub_node.create_authority("hub", now=int(time.time()))
        hub = NodeRuntime(hub_node, limits=ChannelLimits(handshake_timeout=hub_timeout))
        await hub.start(("127.0.0.1", 0))
        assert hub.listening is not None
        net = Net(home, hub, "/tcp/{}:{}".format(*hub.listening), {}, [hub_node])
        try:
            await asyncio.wait_for(test(net), budget)
        finally:
            for runtime in [*net.nodes.values(), hub]:
                await runtime.stop()
            for node in net.opened:
                node.close()

    asyncio.run(main())


def test_enroll_over_tcp_and_talk_directly(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        a = await net.node("a")
        held = await a.enroll(net.ticket(), "a")
        assert held["attributes"] == {"agents.team": "support"}
        assert a.status()["trusted"] == [str(net.hub.node.authority().identifier)]
        assert await a.send_message(f"{net.address}/service/echo", "hello hub") == "hello hub"
        rows = a.channel_rows()
        assert rows[0]["state"] == "open"
        assert rows[0]["peer"] == str(net.hub.node.authority().identifier)

    run(test, tmp_path)


def test_relay_end_to_end_and_the_relay_sees_only_ciphertext(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        a = await net.node("a")
        b = await net.node("b")  # no listening port
        await a.enroll(net.ticket(), "a")
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        seen: list[bytes] = []

        def spy(connection: object, message: RoutedMessage) -> None:
            seen.append(message.encode())

        net.hub.tcp.observers.append(spy)
        await b.create_relay("b", net.address)
        route = f"{net.address}/relay/b/service/echo"
        for _ in range(3):
            assert await a.send_message(route, MARKER) == MARKER
        # B saw the marker in plaintext (it is the echo service) ...
        # ... the hub forwarded every frame of it, and none contained it
        relayed = [frame for frame in seen if len(frame) > 100]
        assert len(relayed) >= 6
        assert not any(MARKER.encode() in frame for frame in seen)
        channel = next(
            r
            for r in a.channel_rows()
            if "relay" not in r["route"] and r["peer"] == str(b.status()["identifier"])
        )
        assert channel["state"] == "open"

    run(test, tmp_path)


def test_node_without_credentials_is_refused(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        b = await net.node("b")
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", net.address)
        stranger = await net.node("stranger")
        with pytest.raises(ChannelError) as caught:
            await stranger.send_message(f"{net.address}/relay/b/service/echo", "let me in")
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        # the stranger trusts nobody, so it refuses the hub too ...
        with pytest.raises(ChannelError) as caught:
            await stranger.send_message(f"{net.address}/service/echo", "hello?")
        assert caught.value.reason is ChannelFailure.PEER_NOT_ALLOWED
        # ... and when it does trust the hub (as enrolling does), the hub admits it to the
        # authority service only: its echo is denied
        hub_id = net.hub.node.authority().identifier
        end = await stranger.channel_to(parse_route(net.address), also_trust=frozenset({hub_id}))
        with pytest.raises(Denied) as denied:
            await call(stranger.router, (end.enc, Address("service", "echo")), "echo", "hello?")
        (reason,) = denied.value.reasons
        assert reason.startswith("hub refused T")
        assert reason.endswith(": it holds no credential from an authority hub trusts")

    run(test, tmp_path)


def test_relay_needs_the_attribute(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        b = await net.node("b")
        await b.enroll(net.ticket(), "b")
        with pytest.raises(Denied) as denied:
            await b.create_relay("b", net.address)
        assert "troth.relay attribute" in denied.value.reasons[0]
        c = await net.node("c")
        await c.enroll(net.ticket(**{"troth.relay": "*"}), "c")
        await c.create_relay("anything", net.address)
        d = await net.node("d")
        await d.enroll(net.ticket(**{"troth.relay": "*"}), "d")
        with pytest.raises(Denied) as denied:
            await d.create_relay("anything", net.address)
        assert "belongs to another identity" in denied.value.reasons[0]

    run(test, tmp_path)


def test_revocation_closes_open_channels(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        await a.send_message(f"{net.address}/service/echo", "x")
        authority = net.hub.node.authority()
        identifier = a.node.identities.get("a", now=int(time.time())).identifier
        authority.revoke_identity(identifier, now=int(time.time()))
        await net.hub.refresh_feeds()
        await net.hub.channels.check_peers()
        assert not [
            e for e in net.hub.channels.ends.values() if e.peer and e.peer.identifier == identifier
        ]

    run(test, tmp_path)


def test_frame_size_limit_closes_the_connection(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        host, port = net.hub.listening or ("", 0)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"\x01" + (limits.MAX_TRANSPORT_FRAME + 1).to_bytes(4, "big"))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the hub
        writer.close()

    run(test, tmp_path)


def test_stalled_handshakes_time_out(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        # a peer that sends message 1 and then stalls: the hub drops its half-open end
        host, port = net.hub.listening or ("", 0)
        reader, writer = await asyncio.open_connection(host, port)
        e = EphemeralKey().public_key.data  # a valid message 1 ("-> e") in a one-frame packet
        hello_packet = (33).to_bytes(2, "big") + b"\x01" + e
        hello = RoutedMessage(
            parse_route("/service/channels"), parse_route("/worker/peer-1"), hello_packet
        )
        writer.write(frame(hello.encode()))
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(5), 5)  # message 2 came back
        await asyncio.sleep(0.8)
        assert not net.hub.channels.ends  # expired after the hub's 0.5 s handshake timeout
        writer.close()

        # an initiator whose peer never answers gives up
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        a = await net.node("a", timeout=0.5)
        with pytest.raises(ChannelError) as caught:
            await a.channel_to(parse_route(f"/tcp/127.0.0.1:{silent.getsockname()[1]}"))
        assert caught.value.reason is ChannelFailure.TIMEOUT
        silent.close()

        # nobody listening: a routing error, quickly
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        unused = closed.getsockname()[1]
        closed.close()
        with pytest.raises(RoutingError, match="cannot connect"):
            await a.channel_to(parse_route(f"/tcp/127.0.0.1:{unused}"))

    run(test, tmp_path, hub_timeout=0.5)


def test_chacha_channels_and_large_messages(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        big = "x" * 300_000
        assert await a.send_message(f"{net.address}/service/echo", big) == big

    run(test, tmp_path)


def test_member_credentials_refresh_before_expiry(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        await a.send_message(f"{net.address}/service/echo", "x")  # a channel is open
        assert await a.refresh_credentials() == 0  # an hour left: nothing to do
        assert await a.refresh_credentials(margin=10**6) == 1
        assert len(a.node.wallet.held("a")) == 2
        hub_ends = [e for e in net.hub.channels.ends.values() if e.peer and e.peer.credentials]
        assert hub_ends  # the hub saw the fresh credential in-band, the channel stayed open
        assert await a.send_message(f"{net.address}/service/echo", "still open") == "still open"

    run(test, tmp_path)


def test_an_authority_rotation_retires_what_it_issued_for_every_verifier(tmp_path: Path) -> None:
    """The authority rotates (say its key leaked): its feed publishes that its older history
    is superseded, so what it issued before no longer verifies, for a verifier without a store
    too (docs/credentials.md, "A stolen authority key"), and the member's node asks for a
    fresh credential at once, not near expiry (`needs_refresh`)."""

    async def test(net: Net) -> None:
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        authority = net.hub.node.authority()
        anchor, now = authority.identifier, int(time.time())
        (old,) = a.node.wallet.held("a")
        net.hub.node.identities.rotate(authority.config.name, now=now)
        await net.hub.reload()  # the hub's view of its feed says the rotation at once
        feed = net.hub.feeds[anchor]
        assert feed.supersession(anchor) is not None
        page = verify_page(authority.feed(now=now), authority=anchor, now=now)
        assert page.supersession(anchor) == feed.supersession(anchor)
        verifier = ChainVerifier(TrustPolicy(frozenset({anchor})))
        member = Identifier(old.identifier)
        with pytest.raises(CredentialError) as refused:
            verifier.verify(old.chain, presenter=member, feeds={anchor: feed}, now=now)
        assert refused.value.reason is CredentialFailure.SUPERSEDED
        assert not needs_refresh(
            [old], anchor, superseded_changes(a.feeds.get(anchor), anchor), now, margin=60
        )
        known = superseded_changes(feed, anchor)
        assert needs_refresh([old], anchor, known, now, margin=60)  # an hour left: the rotation
        issued = authority.issue_member_credential(member, now=now + 1)  # expires after `old`
        fresh = issued.encode()
        verifier.verify(fresh, presenter=member, feeds={anchor: feed}, now=now + 1)
        # the row `hold` writes: its id the chain's last credential's (review 68j, store 2: a
        # row that is not what it says is read by no refresh)
        newer = dataclasses.replace(
            old, id=issued.credentials[-1].hash, chain=fresh, expires_at=old.expires_at + 1
        )
        assert not needs_refresh([old, newer], anchor, known, now, margin=60)

    run(test, tmp_path)


def test_a_member_reaches_its_rotated_authority_and_refreshes(tmp_path: Path) -> None:
    """After the authority rotates, the member's old credential is refused everywhere; its
    node stops presenting it once it knows (the authority's newer history, seen in a
    handshake, or its feed), syncs the feed and refreshes without it, then presents the
    fresh one."""

    async def test(net: Net) -> None:
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        authority = net.hub.node.authority()
        anchor = authority.identifier
        net.hub.node.identities.rotate(authority.config.name, now=int(time.time()))
        await net.hub.reload()
        for _ in range(2):  # the first handshake may still present the old credential
            await a.reload()
            await a.refresh_feeds()
        assert a.feeds[anchor].supersession(anchor) is not None
        assert await a.refresh_credentials() == 1
        await a.reload()
        shown = a.node.wallet.presentable("a", now=int(time.time()))
        held = a.node.wallet.held("a")
        assert len(shown) == len(held) - 1 >= 1  # all but the one issued before
        assert {authority_changes(h) for h in shown} == {2}
        assert await a.send_message(f"{net.address}/service/echo", "x") == "x"

    run(test, tmp_path)


# -- hardening (review findings) ------------------------------------------------------------------


def test_a_long_return_route_is_dropped_at_the_relay_not_at_the_node(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        b = await net.node("b")
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", net.address)
        host, port = net.hub.listening or ("", 0)
        _reader, writer = await asyncio.open_connection(host, port)
        sixteen = tuple(Address("worker", f"w-{n}") for n in range(16))
        attack = RoutedMessage(parse_route("/relay/b/service/channels"), sixteen, b"\x00")
        writer.write(frame(attack.encode()))
        await writer.drain()
        await asyncio.sleep(0.3)
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        reply = await a.send_message(f"{net.address}/relay/b/service/echo", "still here")
        assert reply == "still here"  # b's connection to the relay survived
        writer.close()

    run(test, tmp_path)


def test_garbage_to_the_channel_listener_leaves_no_state(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        host, port = net.hub.listening or ("", 0)
        _reader, writer = await asyncio.open_connection(host, port)
        for n in range(200):
            garbage = RoutedMessage(parse_route("/service/channels"), (), b"\x00\x03abc%d" % n)
            writer.write(frame(garbage.encode()))
        await writer.drain()
        await asyncio.sleep(0.3)
        assert not net.hub.channels.ends
        (connection,) = net.hub.tcp.connections()
        assert connection.allowed.reply_paths < 5
        writer.close()

    run(test, tmp_path)


def test_a_bad_request_does_not_break_the_connection(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        authority = net.hub.node.authority().identifier
        held = a.node.wallet.held("a")[0]
        request = revoke_request(
            a.node.identities,
            "a",
            authority,
            credential_hash=held.id,
            chain=held.chain,
            reason="x" * 1000,
            now=int(time.time()),
        )
        end = await a.channel_to(parse_route(net.address))
        with pytest.raises(RemoteError, match="AuthorityError: request invalid"):
            await call(a.router, (end.enc, Address("service", "authority")), "revoke", request)
        assert await a.send_message(f"{net.address}/service/echo", "ok") == "ok"

    run(test, tmp_path)


def test_a_relay_ends_with_its_channel(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        b = await net.node("b")
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", net.address)
        a = await net.node("a", timeout=1.0)
        await a.enroll(net.ticket(), "a")
        await a.send_message(f"{net.address}/relay/b/service/echo", "up")
        await b.stop()  # b is gone (and does not reconnect)
        a2 = await net.node("a2", timeout=10.0)
        await a2.enroll(net.ticket(), "a2")
        with pytest.raises(RoutingError, match="relay not found"):  # at once, not a timeout
            await a2.send_message(f"{net.address}/relay/b/service/echo", "down")
        assert net.hub.status()["services"]["relay"]["b"]["state"].startswith("held until")

    run(test, tmp_path)


# -- the revocation feed over channels (issue 7) -------------------------------------------------


def test_a_feed_larger_than_a_service_message_syncs_in_pages(tmp_path: Path) -> None:
    """The review's 1 MiB response cliff: 20,000 entries (about 2.5 MB) reach a new node page
    by page over a secure channel; later entries arrive incrementally; the node keeps them."""

    async def test(net: Net) -> None:
        authority = net.hub.node.authority()
        targets = [n.to_bytes(32, "big") for n in range(20_000)]
        authority.revoke_credentials(targets, now=int(time.time()), reason="flooded")
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        feed = a.feeds[authority.identifier]
        assert (feed.count, feed.complete) == (20_000, True)
        assert all(t in feed.revoked_credentials for t in targets[::997])
        authority.revoke_credentials([b"\xff" * 32], now=int(time.time()))
        await a.refresh_feeds()
        assert a.feeds[authority.identifier].count == 20_001
        assert b"\xff" * 32 in a.feeds[authority.identifier].revoked_credentials
        held = a.node.wallet.held_feed(authority.identifier)
        assert held is not None
        assert held.count == 20_001

    run(test, tmp_path)
    with open_node("a", home=tmp_path) as node:  # rebuilt from the store, not verified again
        (hub,) = node.wallet.trusted()
        stored = node.wallet.held_feed(hub)
        assert stored is not None
        assert stored.count == 20_001
        assert b"\xff" * 32 in stored.revoked_credentials


def test_feed_requests_take_since_and_up_to_date_answers_are_reused(tmp_path: Path) -> None:
    """Polls for the feed cannot make the node sign without end: a page is re-signed only
    when the feed grew or FEED_REUSE seconds passed."""

    async def main() -> None:
        init_node("hub", home=tmp_path)
        with open_node("hub", home=tmp_path) as node:
            clock = FixedClock(int(time.time()))
            authority = node.create_authority("hub", now=clock.now())
            hub = NodeRuntime(node, clock=clock)
            await hub.start()
            try:
                service = (Address("service", "authority"),)
                # for the skew after the first page asked for, a page is served again only
                # within its second (pages signed before a start are unknown: 68e, floor 1)
                await call(hub.router, service, "feed", [0])
                clock.advance(limits.MAX_CLOCK_SKEW_SECONDS)
                first = await call(hub.router, service, "feed", [0])
                clock.advance(FEED_REUSE - 1)
                assert await call(hub.router, service, "feed", [0]) == first
                clock.advance(1)
                renewed = await call(hub.router, service, "feed", [0])
                assert renewed != first
                authority.revoke_credential(b"\x01" * 32, now=clock.now())
                grown = await call(hub.router, service, "feed", [0])
                assert (
                    verify_page(grown, authority=authority.identifier, now=clock.now()).count == 1
                )
                for bad, why in (
                    (None, "feed arguments"),
                    ([], "feed arguments"),
                    ([-1], "since"),
                    (["0"], "since"),
                    ([2], "the feed has 1 entries"),
                ):
                    with pytest.raises(RemoteError, match=why):
                        await call(hub.router, service, "feed", bad)
            finally:
                await hub.stop()

    asyncio.run(main())


def test_a_rotation_is_announced_and_superseded_in_the_feed(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        assert await a.announce_rotations() == []  # one change: nothing to announce
        rotated = a.node.identities.rotate("a", now=int(time.time())).identity
        (row,) = await a.announce_rotations()
        assert row["announced"] is True
        assert row["changes"] == 2
        assert await a.announce_rotations() == []  # announced up to change 2
        await a.refresh_feeds()
        superseded = a.feeds[net.hub.node.authority().identifier].supersession(rotated.identifier)
        assert superseded is not None
        assert superseded.change_hash == rotated.current_change_hash

    run(test, tmp_path)


def test_a_service_never_sends_more_than_the_limit(tmp_path: Path) -> None:
    async def test(net: Net) -> None:
        async def huge(arguments: object, context: RequestContext) -> bytes:
            return b"\x00" * limits.MAX_SERVICE_MESSAGE

        @dataclass
        class Huge:
            name: str = "huge"
            oneway: Method | None = None

            def __post_init__(self) -> None:
                self.methods = {"get": Method(huge, AnyAuthenticated())}

            async def maintain(self, now: int) -> None:
                return None

            def status(self) -> dict[str, object]:
                return {}

        net.hub.host.add(Huge())
        with pytest.raises(RemoteError, match="service limit"):
            await call(net.hub.router, (Address("service", "huge"),), "get", None)
        with pytest.raises(RemoteError, match="service limit"):
            await call(net.hub.router, (ECHO,), "echo", b"\x00" * limits.MAX_SERVICE_MESSAGE)

    run(test, tmp_path)


def test_what_the_protocol_sends_fits_a_service_message() -> None:
    """The largest page, chain bundle, signed request and enroll answer each fit in one service
    message (with the request/response envelope around them)."""
    envelope = len(cbor.encode(["troth.service.response", 1, True, b""]))
    largest = {
        "feed page": limits.MAX_FEED_PAGE_BYTES,
        "chain (enroll/refresh answer)": limits.MAX_CHAIN_BYTES,
        "signed request": MAX_REQUEST_BYTES,
    }
    for what, size in largest.items():
        encoded = cbor.encode(["troth.service.response", 1, True, b"\x00" * size])
        assert len(encoded) <= limits.MAX_SERVICE_MESSAGE, what
        assert len(encoded) <= size + envelope + 5
    assert limits.MAX_SERVICE_MESSAGE <= limits.MAX_APPLICATION_MESSAGE
    assert limits.MAX_SERVICE_MESSAGE <= limits.MAX_CBOR_BYTES


@pytest.mark.slow
def test_a_million_entry_feed(tmp_path: Path) -> None:
    """1,000,000 entries: appended (the authority's bulk path), synced to a new node over a
    secure channel on loopback TCP, and held: a credential revoked by the last entry is refused,
    a new one verifies (`troth bench --only feed` times the sync)."""

    async def test(net: Net) -> None:
        authority = net.hub.node.authority()
        now = int(time.time())
        authority.revoke_credentials((n.to_bytes(32, "big") for n in range(999_999)), now=now)
        a = await net.node("a")
        await a.enroll(net.ticket(), "a")
        (mine,) = a.node.wallet.held("a")
        authority.revoke_credential(mine.id, now=now, reason="the millionth")
        await a.refresh_feeds()
        feed = a.feeds[authority.identifier]
        assert (feed.count, feed.complete) == (1_000_000, True)
        # verified as of now: the credential was issued after the 999,999 revocations, which
        # take over a minute on a loaded machine (past the clock skew a credential may have)
        now = int(time.time())
        verifier = ChainVerifier(TrustPolicy(frozenset({authority.identifier})))
        actor = a.node.identities.get("a", now=now).identity
        with pytest.raises(CredentialError) as caught:
            verifier.verify(mine.chain, presenter=actor, feeds=a.feeds, now=now)
        assert caught.value.reason is CredentialFailure.REVOKED
        fresh = authority.issue_member_credential(actor.identifier, now=now).encode()
        verifier.verify(fresh, presenter=actor, feeds=a.feeds, now=now)

    run(test, tmp_path, budget=600)
