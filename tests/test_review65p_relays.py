"""Review 65p, relays: findings (each test failed before its fix).

Relays 1 (medium: a refused relay still carried strangers to its owner). A relay whose owner
may no longer create its name (its credential revoked: `RelayService._recheck`) "forwards
nothing" (docs/protocols.md, "Relays"), but only the name stopped: a sender's message 1 went to
the owner through the name, the owner's message 2 came back with the hub's connection to the
owner first in its return route, and the hub's connection to the sender allowed that address
from then on (the reply path of what was sent over it). So a stranger that once reached the
owner went on reaching it straight at that connection address after the refusal: its open
channels, and any number of new handshakes; and the hub's connection to the owner allowed the
sender's (the reply path of the message 1 it forwarded), so the refused owner went on sending
to its senders through the hub, which made their connections allow its own again. Now a relay
refused is forgotten as a reply path at every connection of the node and its owner's connection
forgets every other (`RelayService._cut_off`), unless another name still up forwards over the
same connection. Found and fixed here; the last test failed with only the first half of the
fix.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.test_reconnect import until
from tests.test_review55a_refuted import Stranger, with_stranger
from troth.channel import RouteProblem, route_error
from troth.node.access import AccessRequest, Decision
from troth.routing import Address, RoutedMessage


async def _reach_b_then_refuse(net: Stranger, refused: str) -> Address:
    """A message 1 through `/relay/b`, b's message 2 back; then the re-check refuses the name
    `refused`: the hub's connection to b (what b's message 2 named)."""
    net.send("/relay/b/service/channels")
    second = await net.receive()
    to_b = second.return_route[0]
    assert to_b == net.relay.relays["b"].connection

    def decide(request: AccessRequest) -> Decision:
        return Decision(request.arguments != refused, ("revoked",))

    net.relay.decide = decide
    net.relay._recheck(net.relay.clock())
    return to_b


def test_a_refused_relay_is_not_reached_past_its_name_over_a_reply_path(tmp_path: Path) -> None:
    """Relays 1: after the refusal a new message 1 straight to the hub's connection to b is
    dropped at the hub (the stranger's connection may not reach it); before, b got it."""

    async def test(net: Stranger) -> None:
        to_b = await _reach_b_then_refuse(net, "b")
        assert net.relay.relays["b"].refused
        before, dropped = len(net.mine()), net.hub_tcp.counters.dropped_messages
        net.send(f"{to_b}/service/channels")
        await until(
            lambda: net.hub_tcp.counters.dropped_messages > dropped or len(net.mine()) > before
        )
        assert len(net.mine()) == before

    with_stranger(tmp_path, test)


def test_a_refused_relay_leaves_the_reply_paths_of_a_name_still_up_there(tmp_path: Path) -> None:
    """Relays 1, what the fix keeps: another name over the same connection (b2, b's too) is
    still up when b is refused, so the stranger's way to that connection stays."""

    async def test(net: Stranger) -> None:
        net.relay.relays["b2"] = replace(net.relay.relays["b"])
        to_b = await _reach_b_then_refuse(net, "b")
        assert net.relay.relays["b"].refused
        assert not net.relay.relays["b2"].refused
        before = len(net.mine())
        net.send(f"{to_b}/service/channels")
        await until(lambda: len(net.mine()) > before)

    with_stranger(tmp_path, test)


def test_a_refused_relays_owner_does_not_reach_its_senders_through_the_hub(tmp_path: Path) -> None:
    """Relays 1, the way back: the hub's connection to b allowed the stranger's connection (the
    reply path of the message 1 it forwarded), so b, refused, still sent to the stranger
    through the hub, and what it sent made the stranger's connection allow b's again (the
    reply path of what was sent over it). After the refusal it is dropped at the hub."""

    async def test(net: Stranger) -> None:
        await _reach_b_then_refuse(net, "b")
        (arrived,) = net.mine()
        to_hub, to_stranger = arrived.return_route[:2]
        stranger = net.hub_tcp.connection(to_stranger)
        assert stranger is not None
        dropped, sent = net.hub_tcp.counters.dropped_messages, stranger.frames_sent
        await net.b.router.route(RoutedMessage((to_hub, to_stranger), (), b"from b"))
        await until(
            lambda: net.hub_tcp.counters.dropped_messages > dropped or stranger.frames_sent > sent
        )
        assert stranger.frames_sent == sent
        net.send("/relay/nobody")
        answer = await net.receive()  # the probe's: nothing came from b before it
        assert bytes(answer.payload) == route_error(RouteProblem.RELAY_NOT_FOUND)

    with_stranger(tmp_path, test)
