"""Review 44a, relayed callers: a node reached through a hub's relay name decides each request
of a relayed peer on that peer's own verified identity (the channel runs end to end through the
relay, docs/protocols.md, "Access" and "Routing").

Refuted (pinned):
- bob, through `/tcp/hub:4000/relay/alice`, is allowed at alice's node as bob, and refused
  there on his next request once the hub revoked him and alice synced the hub's feed: the
  relay neither lends its identity nor caches a decision;
- a plain routed message (no channel) sent through the relay to alice's `/service/sink` or
  `/service/echo` reaches no service: alice's connection to the relay lets in channel
  handshakes and reply paths only, so nothing skips the decision point there.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.encoding import cbor
from troth.errors import Denied, TrothError
from troth.node.services import call, service_address
from troth.node.services.base import REQUEST, VERSION
from troth.node.services.sink import SinkService
from troth.routing import RoutedMessage, new_worker_address


def test_a_relayed_peer_is_decided_as_itself_and_revoked_at_once(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        alice = await net.member("alice", **{"troth.relay": "alice"})
        await alice.create_relay("alice", HUB)
        bob = await net.member("bob")
        alice_id, bob_id = net.identifier(alice), net.identifier(bob)
        end = await bob.channel_to(route(f"{HUB}/relay/alice"), expect=alice_id)
        echo = (end.enc, service_address("echo"))
        assert await call(bob.router, echo, "echo", "hi") == "hi"
        (peer,) = [
            e.peer
            for e in alice.channels.ends.values()
            if e.peer is not None and e.peer.identifier == bob_id
        ]
        assert peer.identifier == bob_id  # not the hub's: the channel is bob's, end to end
        net.authority.revoke_identity(bob_id, now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        await alice.refresh_feeds()
        with pytest.raises(Denied, match="revoked"):
            await call(bob.router, echo, "echo", "again")

    run_memnet(test, tmp_path)


def test_a_plain_message_through_the_relay_reaches_no_service(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        alice = await net.member("alice", **{"troth.relay": "alice"})
        await alice.create_relay("alice", HUB)
        mallory = await net.node("mallory")
        sink = alice.host.services["sink"]
        assert isinstance(sink, SinkService)
        refused, malformed = alice.host.refused, alice.host.malformed
        got: list[bytes] = []
        probe = new_worker_address("probe")

        async def answer(message: RoutedMessage, source: object) -> None:
            got.append(bytes(message.payload))

        mallory.router.register(probe, answer)
        request = cbor.encode([REQUEST, VERSION, 1, "echo", "hi"])
        for service in ("sink", "echo"):
            where = route(f"{HUB}/relay/alice/service/{service}")
            with contextlib.suppress(TrothError):
                await mallory.router.route(RoutedMessage(where, (probe,), request))
        await asyncio.sleep(0.2)  # nothing is expected to arrive: give it time to
        assert (sink.messages, got) == (0, [])
        assert (alice.host.refused, alice.host.malformed) == (refused, malformed)

    run_memnet(test, tmp_path)
