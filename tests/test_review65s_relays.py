"""Review 65s, relays: findings against review 65p's cut-off (each test failed before its fix).

Relays 1 (medium: one member cut every other party's reply paths through a shared connection).
Review 65p's cut-off (`RelayService._cut_off`) forgets a refused relay's connection as a reply
path at every connection of the hub, and that connection forgets every other, unless a name
still up forwards over it. A relay's connection is the first hop of its owner's route, which is
the owner's own connection only for an owner connected directly: for an owner behind another
node (review 45e: `Relay.beyond`, e.g. a hub that holds `/relay/hub` at a relay node R1 and
whose members reach it through R1) it is the connection to that node, which every other party
behind it shares. A member there that had itself refused on purpose (a name created, then no
credential shown by an in-band refresh, on a hub that admits strangers to enroll, or its
credential let expire: refused at the next round; shown again, the name forwards again;
refused again) cut the channels of every other party reached over that connection, both ways,
each round. The hub cannot tell their reply paths
apart at that connection (they are keyed by the first hop), so a relay whose owner is behind
another node is cut off by its name only, as before 65p: the node in between holds the owner's
own reply paths (residual, docs/protocols.md, "Relays").

Relays 2 (medium: review 65p's cut-off passed by). Only the connection the name forwarded over
when refused was cut: an owner that had created its name again over another connection of its
own (another spelling of the hub's address: a second connection) kept every sender that had
reached it over the first one, at that connection's reply path, after the refusal, both ways
(its channel there kept open as a stranger's, or the connection kept up by the frames it and
its senders exchange). A relay now keeps the owner's own connections it forwarded over before,
while they are open (`Relay.earlier`, the latest `MAX_CHANNELS_PER_MEMBER`), and a refusal cuts
them too.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.test_reconnect import until
from tests.test_review55a_refuted import Stranger, with_stranger
from troth.node.access import AccessRequest, Decision
from troth.routing import Address, RoutedMessage


def test_an_owner_behind_a_shared_connection_refused_cuts_no_other_partys_reply_paths(
    tmp_path: Path,
) -> None:
    """Relays 1: the stranger reached b (here the node in between) through its name; then b's
    name goes (b is only the node others are behind) and owner o, behind b's node over the
    same connection (`beyond`), is refused. The stranger still reaches b at its reply path,
    and b still reaches the stranger through the hub; before, both were dropped at the hub."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        second = await net.receive()
        to_b = second.return_route[0]
        relays = net.relay.relays
        # (b's connection stands for one the hub opened to a relay node: an owner behind a
        # connection the hub accepted is cut by it; review 66f, relays 1)
        relays["o"] = replace(relays["b"], beyond=(Address("worker", "o-behind-b"),), behind=True)
        del relays["b"]

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.arguments != "o", ("revoked",))

        net.relay.decide = decide
        net.relay._recheck(net.relay.clock())
        assert relays["o"].refused
        before = len(net.mine())
        net.send(f"{to_b}/service/channels")
        await until(lambda: len(net.mine()) > before)
        arrived = net.mine()[-1]
        to_hub, to_stranger = arrived.return_route[:2]
        stranger = net.hub_tcp.connection(to_stranger)
        assert stranger is not None
        sent = stranger.frames_sent
        await net.b.router.route(RoutedMessage((to_hub, to_stranger), (), b"from b"))
        await until(lambda: stranger.frames_sent > sent)

    with_stranger(tmp_path, test)


def test_a_refused_owner_is_not_reached_at_its_earlier_connection(tmp_path: Path) -> None:
    """Relays 2: the stranger reached b through its name over b's first connection; b creates
    the name again over a second connection of its own to the hub (another spelling of the
    hub's address), then is refused. The stranger does not reach b at the first connection's
    reply path any more; before, only the latest connection was cut and it did."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        second = await net.receive()
        to_b = second.return_route[0]
        assert net.hub.listening is not None
        port = net.hub.listening[1]
        await net.b.create_relay("b", f"/tcp/localhost:{port}")
        relay = net.relay.relays["b"]
        assert relay.connection != to_b
        assert relay.others

        def decide(request: AccessRequest) -> Decision:
            return Decision(False, ("revoked",))

        net.relay.decide = decide
        net.relay._recheck(net.relay.clock())
        assert relay.refused
        before, dropped = len(net.mine()), net.hub_tcp.counters.dropped_messages
        net.send(f"{to_b}/service/channels")
        await until(
            lambda: net.hub_tcp.counters.dropped_messages > dropped or len(net.mine()) > before
        )
        assert len(net.mine()) == before

    with_stranger(tmp_path, test)
