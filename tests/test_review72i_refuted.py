"""Review 72i: attacks on "a direct channel is the node at the other end of its connection"
(review 72c's notices 2, review 72i's ends 1) that did not work, each a passing test that fails
if the defence it names breaks.

1. A node at an address a link pins for identity X (an impostor there) keeps its connection
   from being closed as the wrong node's (`ChannelOpening._drop_connection`, `unless`: a
   channel over it answered by X) by relaying the link's handshake to the real X. It can (it
   writes what comes back over its connection, the return route included), but gains nothing:
   the channel is X's, end to end, so what the caller sends goes to X, and the node in between
   carries only what it cannot read, as any hop on the way could.
2. A member behind the node at the other end naming a channel end's reply address as the
   second hop of its route: the node puts its own connection to the member first in the route,
   so at this node the member's route is three hops, never the node's two, whatever it names
   (none: two hops, the second a connection's: ends 1). Its channel is no `direct` one (that
   part failed before ends 1's fix, as every member's channel over the connection was).
3. Review 72c's note: a relay owner refused (review 65p's cut) sends to a sender's own relay
   name, and the sender may answer it at its connection again (a reply path), so the sender's
   old channel with it carries again. Judged as designed, not a hole (docs/protocols.md,
   "Relays"): a refusal takes the owner's name, not its connection (it may stay as a
   stranger's), and relay names are every connected party's to reach; the cut stops what the
   name gave others (reaching the owner), which the owner cannot restore for anyone but a
   sender it contacts itself, at that sender's own name. Blocking it would bar the owner from
   every sender's name, a ban the refusal does not decide.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.support.channels import T
from tests.support.parties import make_channel_party
from tests.test_channel_manager import Net, echo, run
from tests.test_reconnect import until as until_net
from tests.test_review55a_refuted import Stranger, with_stranger
from tests.test_review65p_relays import _reach_b_then_refuse
from tests.test_review66q_refuted import OTHER
from tests.test_review72i_ends import _M_END, _Behind
from troth.node.channels import LISTENER
from troth.routing import Address, RoutedMessage, Source


def test_a_node_relaying_a_pinned_handshake_to_the_real_identity_reads_nothing() -> None:
    """Refuted 1: the node at the caller's connection passes every message 1 to its listener on
    to x's (x connected to it) and x's answers back: the caller's channel is x's, its echo
    answered by x, and no frame through the node in between carries what the caller sent."""

    async def test(net: Net) -> None:
        between = await net.hub()
        party = make_channel_party(net.world.vault, now=T)
        x = await net.relayed(between, "x", party=party)
        (to_x,) = x.transport.connections()
        (at_between,) = [c for c in between.transport.connections() if c.other is to_x]
        caller = net.peer("10.0.0.3")
        mine = await caller.transport.connect("hub", 4000)
        (from_caller,) = [c for c in between.transport.connections() if c.other is mine]
        at_between.allowed.permit(from_caller.address)  # x's answers go back to the caller
        route, seen = between.router.route, []

        async def carried(message: RoutedMessage, source: Source | None = None) -> None:
            seen.append(bytes(message.payload))
            await route(message, source)

        async def to_x_listener(message: RoutedMessage, _source: Source | None) -> None:
            onward = (at_between.address, LISTENER)
            await route(RoutedMessage(onward, message.return_route, message.payload))

        between.router.route = carried  # type: ignore[method-assign]
        between.router.unregister(LISTENER)
        between.router.register(LISTENER, to_x_listener)
        end = await caller.manager.open((mine.address,))
        assert end.peer is not None
        assert end.peer.identifier == party.party.identity.identifier
        handshake = len(seen)
        assert await echo(caller, end, "for x alone") == "for x alone"
        assert len(seen) > handshake  # the call and its answer went through it
        assert not any(b"for x alone" in payload for payload in seen)

    run(test)


def test_a_member_naming_a_channel_end_second_is_not_the_node() -> None:
    """Refuted 2: m, behind b, names a channel end's reply address as its whole return route:
    its channel with the hub is open, its peer route three hops (b's connection to m between),
    so not `direct`; b's own channel with the hub is (the control)."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        b = await net.relayed(hub, "b")
        (connection,) = b.transport.connections()
        await _Behind(net, hub, b).open(_M_END)
        (theirs,) = hub.manager.ends.values()
        await b.manager.open((connection.address,))
        (mine,) = [e for e in hub.manager.ends.values() if e is not theirs]
        routes: list[Any] = [theirs.peer_route, mine.peer_route]
        assert [len(r) for r in routes] == [3, 2]
        assert [e.direct for e in (theirs, mine)] == [False, True]

    run(test)


def test_a_refused_owner_reaching_a_senders_own_name_is_answered_there(tmp_path: Path) -> None:
    """Refuted 3 (judged as designed; docs/protocols.md, "Relays"): b, refused, is no longer
    reached by the stranger at b's connection (review 65p); b sends to the stranger's own name
    (`/relay/s`, the stranger's connection), as any party connected to the hub may: the
    stranger may answer b there again (its connection allows b's, a reply path), as anyone it
    was reached by."""

    async def test(net: Stranger) -> None:
        to_b = await _reach_b_then_refuse(net, "b")
        (arrived,) = net.mine()
        dropped = net.hub_tcp.counters.dropped_messages
        net.send(f"{to_b}/service/channels")  # cut off (review 65p)
        await until_net(lambda: net.hub_tcp.counters.dropped_messages > dropped)
        to_hub, to_stranger = arrived.return_route[:2]
        relays = net.relay.relays
        relays["s"] = replace(relays["b"], owner=OTHER, connection=to_stranger, refused=False)
        relays["s"] = replace(relays["s"], lost_at=None, accounts=frozenset({OTHER.digest}))
        await net.b.router.route(RoutedMessage((to_hub, Address("relay", "s")), (), b"from b"))
        assert bytes((await net.receive()).payload) == b"from b"
        before = len(net.mine())
        net.send(f"{to_b}/service/channels")
        await until_net(lambda: len(net.mine()) > before)

    with_stranger(tmp_path, test)
