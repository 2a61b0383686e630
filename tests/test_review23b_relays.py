"""Review 23b (a node under hostile peers: relays).

1. `relay.create NAME` is decided per request (a credential whose `troth.relay` holds NAME or
   `*`), but the relay it makes forwards for as long as its owner's channel stays open, and
   nothing decides that channel again but the continuous re-check, which asks only whether the
   peer may hold a channel: on a node that hosts an authority any authenticated identity may
   (to enroll). So a member the authority removed (its credentials revoked), or a delegate
   whose delegation was revoked, shows no chain any more (an in-band refresh with none: the
   revoked chain would close its channel), keeps its channel to the hub as a stranger and its
   relay name up — reached by everyone, counted in its member's quota — for as long as it keeps the
   channel alive.

2. a relayed node's link, reconnecting, creates its relay names again one after the other and
   gives the attempt up at the first one refused (`NodeRuntime._restore`). A name the node can
   no longer have — taken, once its grace period ran out, by another holder of
   `troth.relay=*` (mallory), or no longer covered by its credential — stops every name
   sorted after it (and the feed sync after them) for good: each attempt fails at the same
   name, the other names are never forwarded again and, once their grace runs out, are free
   for anyone too.

3. a link is pinned to the identity that answered at its route (`Link.peer`), but any channel
   to the same route replaces that pin (`Links.opened`), a channel opened without one
   (`troth message send`, `channel create`) too, and a channel open to the route is reused for
   the link's pinned attempt only if its peer is the pinned one, else the attempt fails
   (`_still_open`). So while the hub is down, mallory — a member, answering at the hub's
   address — answers b's next unpinned message: the link is pinned to her from then on (b
   creates its relay at her node; the hub, back, is refused), or, were the pin kept, her
   channel, which she keeps open, fails every attempt of the link; either way b never gets
   back to the hub, and once the grace period runs out its relay name there is free for her.

Each test asserts the secure behaviour and was a strict xfail until its fix. Fixed: 1. each
maintenance round decides `relay.create NAME` again for the owner of every relay that
forwards, as its channel shows it now; one refused stops forwarding and is held for its owner
for the grace period (`RelayService._recheck`); 2. a reconnect creates every relay name again
whatever another's answer, syncs the feed, and only then fails the attempt (naming the names
refused), to try them again after the backoff (`NodeRuntime._restore`); 3. a channel
another identity answered is not the link's nor its pin (`Links.opened`); a pinned caller does
not reuse an open channel whose peer is not the one it expects but opens one (`_still_open`);
and a pinned channel to a one-hop route answered by another identity drops that connection,
which goes to the wrong node (`channel_to`), so the next attempt connects afresh.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_reconnect import FAST, crash_and_restart_hub, link_state, until
from troth.errors import RoutingError
from troth.node.channels import LISTENER
from troth.node.links import Backoff, LinkState
from troth.transport import Listener, MemoryTransport

GRACE = 60  # the hub's relay grace (short: the clock stays well within feed staleness)


def test_a_removed_members_relay_stops_forwarding(tmp_path: Path) -> None:
    """b (troth.relay=b) creates relay b at the hub, which hosts the authority; the authority
    removes b (its credentials revoked), and b refreshes its channel in-band with no chain at
    all. After the hub's next maintenance round b's channel may stay open (b is a stranger
    now, admitted to enroll), but relay b no longer forwards: a new channel to it is answered
    `relay not found`."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        b = await net.member("b", **{"troth.relay": "b"})
        await b.create_relay("b", HUB)
        a = await net.member("a")
        assert await a.send_message(f"{HUB}/relay/b/service/echo", "up") == "up"
        await hub.maintain()  # b may still create it: the re-check leaves it up
        assert await a.send_message(f"{HUB}/relay/b/service/echo", "still") == "still"

        net.authority.remove_member(net.identifier(b), now=net.clock.now())
        to_hub = await b.channel_to(route(HUB))
        await to_hub.present(())  # b shows no credential any more: a stranger's channel
        await hub.maintain()
        relays = hub.host.services["relay"].status()
        assert relays["b"]["state"] != "up"
        with pytest.raises(RoutingError, match="relay not found"):
            await a.channels.open(route(f"{HUB}/relay/b"))

    run_memnet(test, tmp_path / "home", budget=30)


def test_one_relay_name_taken_leaves_the_others_restored(tmp_path: Path) -> None:
    """b holds relays b1 and b2. Its channel to the hub closes and b stays away (its backoff)
    past the hub's grace period; mallory (troth.relay=*) takes b1, as she may by then. b's
    link comes back: b1 is refused (it is mallory's now), b2 is b's again and forwards."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        slow = Backoff(base=2.0, max_delay=2.0)
        b = await net.node("b", backoff=slow, random=lambda: 0.99)  # ~2 s before it retries
        await b.enroll(net.ticket(**{"troth.relay": "*"}), "b")
        await b.create_relay("b1", HUB)
        await b.create_relay("b2", HUB)
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        relays = hub.host.services["relay"]

        owner = net.identifier(b)
        (end,) = [e for e in hub.channels.ends.values() if e.peer and e.peer.identifier == owner]
        await end.close()  # b's channel to the hub is gone; b retries in ~2 s
        net.clock.advance(GRACE + 1)
        await mallory.create_relay("b1", HUB)  # b's grace is over: b1 is hers now
        await until(lambda: relays.status()["b2"]["state"] == "up", timeout=6)
        assert relays.status()["b1"]["owner"] == str(net.identifier(mallory))
        await until(lambda: "relay b1" in (b.link_rows()[0].error or ""))  # said, tried again

    run_memnet(test, tmp_path / "home", budget=30, relay_grace=GRACE)


def test_an_unpinned_channel_answered_by_another_leaves_the_links_pin(tmp_path: Path) -> None:
    """The hub goes down; mallory (a member) answers at its address, b sends an unpinned
    message there (she answers it) and she leaves, keeping her channel with b open. The link
    stays pinned to the hub, and once the hub is back b reconnects to it and its relay is up."""

    async def test(net: MemNet) -> None:
        b = await net.node("b", backoff=FAST)
        await b.enroll(net.ticket(**{"troth.relay": "b"}), "b")
        await b.create_relay("b", HUB)
        mallory = await net.node("mallory", listen=("mallory", 4000))
        await mallory.enroll(net.ticket(), "mallory")
        hub_id = str(net.authority.identifier)
        assert b.link_rows()[0].peer == hub_id

        async def mallory_answers() -> None:
            at_hub = Listener(addresses=frozenset({LISTENER}), kinds=frozenset({"relay"}))
            await mallory.tcp.listen("hub", 4000, at_hub)
            assert await b.send_message(f"{HUB}/service/echo", "hub?") == "hub?"  # hers
            assert b.link_rows()[0].peer == hub_id  # the link's pin is the hub's still
            assert isinstance(mallory.tcp, MemoryTransport)
            net.network._unbind(mallory.tcp)  # she leaves; her channel with b stays open

        await crash_and_restart_hub(net, down=mallory_answers)
        await until(lambda: link_state(b) is LinkState.CONNECTED, timeout=8)
        assert b.link_rows()[0].peer == hub_id
        assert net.hub is not None
        assert net.hub.status()["services"]["relay"]["b"]["state"] == "up"

    run_memnet(test, tmp_path / "home", budget=30)
