"""Review 55i, refuted: attacks on "revocation is real" that did not work, each a real attempt
on node runtimes that would succeed if its defence broke."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from tests.test_review55i_revoked import DESK, _desk_and_agent
from troth.credentials import Attributes
from troth.errors import ChannelError, Denied, RoutingError
from troth.node.services import call, service_address
from troth.node.services.node_policies import unrevoked
from troth.node.services.relay import RelayService
from troth.routing import Address, RoutedMessage, parse_route

ECHO = service_address("echo")


def test_open_channels_of_a_revoked_member_and_its_delegate_are_refused_in_the_same_second(
    tmp_path: Path,
) -> None:
    """The member `agent` and `helper`, its delegate on its node, each hold an open channel to
    desk and are served; the authority revokes agent's identity (compromised) and desk syncs
    the feed, all within one second of desk's clock: neither standing cached for that second
    nor the verifier's cache lets the next request of either open channel through."""

    async def scene(net: MemNet) -> None:
        desk, _ = await _desk_and_agent(net)
        [agent] = [r for r in net.runtimes if r.name == "agent"]
        now = net.clock.now()
        helper = agent.node.identities.create(now=now, name="helper").identifier
        chain = agent.node.wallet.delegate(
            "agent",
            to=helper,
            attributes=Attributes({"agents.team": "support"}),
            now=now,
            ttl=600,
            purpose="p",
        )
        agent.node.wallet.hold("helper", chain, now=now)
        ends = [
            await agent.channel_to(parse_route(DESK)),
            await agent.channel_to(parse_route(DESK), identity="helper"),
        ]
        assert [end.channel.peer is not None for end in ends] == [True, True]
        assert ends[0] is not ends[1]  # one channel as agent, one as helper
        for end in ends:
            assert await call(agent.router, (end.enc, ECHO), "echo", "hi") == "hi"
        assert agent.identifier is not None
        net.authority.revoke_identity(agent.identifier, now=now, reason="compromised")
        assert await desk.sync_trusted_feed(net.authority.identifier) == 1
        assert net.clock.now() == now
        for end in ends:
            assert end.enc in agent.channels.ends  # the channel is still open
            with pytest.raises(Denied, match="revoked"):
                await call(agent.router, (end.enc, ECHO), "echo", "again")

    run_memnet(scene, tmp_path)


def test_a_member_on_a_node_whose_feed_went_stale_is_refused(tmp_path: Path) -> None:
    """Deny when in doubt: desk holds a feed that it cannot refresh (no sync for more than the
    maximum staleness, 5 minutes): the member's next request over its open channel is refused,
    saying the feed is stale, not served on the old feed's word."""

    async def scene(net: MemNet) -> None:
        await _desk_and_agent(net)
        [agent] = [r for r in net.runtimes if r.name == "agent"]
        assert await agent.send_message(f"{DESK}/service/echo", "hi") == "hi"
        net.clock.advance(301)
        with pytest.raises(Denied, match="stale"):
            await agent.send_message(f"{DESK}/service/echo", "again")

    run_memnet(scene, tmp_path)


def test_a_member_cannot_hide_the_chain_of_the_co_trusted_authority_that_revoked_it(
    tmp_path: Path,
) -> None:
    """agent is a member of the hub and of globex, both trusted by desk, and showed desk both
    chains. globex revokes agent's identity (compromised); agent's node, having synced
    globex's feed, shows only its hub chain from then on. desk refuses the next request of
    the open channel, and a new channel, whatever chain agent shows: globex vouched for it."""

    async def scene(net: MemNet) -> None:
        desk, _ = await _desk_and_agent(net)
        [agent] = [r for r in net.runtimes if r.name == "agent"]
        _globex, authority, ticket = await globex_over_tcp(net)
        await desk.enroll(ticket, "desk")
        second = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"globex.team": "desk"}),
            address="/tcp/globex:4000",
            now=net.clock.now(),
        )
        await agent.enroll(str(second), "agent")
        await (await agent.channel_to(parse_route(DESK))).close()  # opened before: one chain
        end = await agent.channel_to(parse_route(DESK))
        assert end.channel.peer is not None
        [mine] = [
            e
            for e in desk.channels.ends.values()
            if e.peer and e.peer.identifier == agent.identifier
        ]
        assert mine.peer is not None
        assert len(mine.peer.credentials) == 2  # both chains shown
        assert await call(agent.router, (end.enc, ECHO), "echo", "hi") == "hi"
        assert agent.identifier is not None
        authority.revoke_identity(agent.identifier, now=net.clock.now(), reason="compromised")
        assert await desk.sync_trusted_feed(authority.identifier) == 1
        assert await agent.sync_trusted_feed(authority.identifier) == 1
        held = agent.node.wallet.presentable("agent", now=net.clock.now())
        shown = unrevoked(tuple(h.chain for h in held), agent.trust.feeds)  # what it shows
        assert len(held) == 2
        assert len(shown) == 1
        with pytest.raises(Denied, match="revoked"):
            await call(agent.router, (end.enc, ECHO), "echo", "again")
        await end.close()
        with pytest.raises(ChannelError, match="revoked"):
            await agent.channel_to(parse_route(DESK))

    run_memnet(scene, tmp_path)


def test_a_relay_stops_forwarding_for_a_member_revoked_at_the_next_round(tmp_path: Path) -> None:
    """A member holding a relay name on the hub (its troth.relay attribute) is revoked for
    good: at the hub's next maintenance round its relay forwards nothing (docs/protocols.md,
    "Relays": decided again each round), though its channel to the hub, through which the
    hub's relay forwards, may live on; a message to the name is answered not found."""

    async def scene(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        owner = await net.member("owner", **{"troth.relay": "owner"})
        await owner.create_relay("owner", HUB)
        service = hub.host.services["relay"]
        assert isinstance(service, RelayService)
        relay = service.relays["owner"]
        assert relay.lost_at is None
        assert owner.identifier is not None
        now = net.clock.now()
        await service.maintain(now)
        assert not relay.refused  # decided again, and allowed, before the revocation
        net.authority.revoke_identity(owner.identifier, now=now, reason="compromised")
        hub.trust.refresh_hosted(now)
        await service.maintain(now)
        assert relay.refused
        with pytest.raises(RoutingError, match="not found"):
            await service.send(Address("relay", "owner"), RoutedMessage((), (), b"x" * 64))

    run_memnet(scene, tmp_path)
