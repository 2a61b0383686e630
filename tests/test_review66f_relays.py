"""Review 66f, relays: findings against the relay cut-off of reviews 65p and 65s (each test
failed before its fix).

Relays 1 (medium: the refused owner chose to be cut by its name only). Review 65s cut a
refused owner "behind another node" (`Relay.beyond`: hops past the connection) by its name
only, since that connection is every other party's there too. But the hops past the first are
whatever the owner's message 1 put in its return route: an owner connected straight to the
hub that named one more hop of its own (a worker of its node that passes it on) was "behind
another node", and after its refusal every sender that had reached it kept reaching it at its
connection's reply path, both ways: review 65p's cut, undone by the owner it cuts. A
connection another node forwards over is one this node opened to it (a hub holding its name
at a relay node R1, its members behind R1: docs/protocols.md, "Relays"); an owner whose
channel came over a connection this node accepted is that connection's own party, whatever
hops it names, and is cut off by it (`Relay.behind`).

Relays 2 (low: review 65s's earlier connections passed by). A relay keeps the owner's own
connections it forwarded over before, the latest `MAX_CHANNELS_PER_MEMBER` (`Relay.earlier`),
and a refusal cuts those; one pushed out of that window by as many creations again over other
connections (64 a source: five sources) was never cut, and its senders kept reaching the
refused owner there. One pushed out is now cut off as it goes (`RelayService._earlier`).

Relays 3 (low: CPU). A cut (`RelayService._cut_off`) made every connection of the node forget
every connection cut, and each one cut forget every connection: 2 x N x K dictionary and set
look-ups for K connections cut among N, whatever they held (at 1,024 connections, one member
holding its names over 512 of its own and refusing itself on purpose every other round, about a
million look-ups, ~0.3 s of the event loop, each time). Each connection now goes through the
smaller of what it holds and what it forgets (`AllowSet.forget_each`): a cut costs about what
the node's connections remember, which senders had to build message by message.

Relays 4 (medium: review 65p's cut, put off for good). A refusal cuts no connection another
name still up forwards over (its senders' ways there stay), but nothing cut it once that name
went down: an owner refused while a name of another identity of its node (a second member it
runs) was up over the same connection closed that identity's channel, and every sender that
had reached it went on reaching it there after its refusal, both ways. A connection a refusal
left uncut is kept (`RelayService._uncut`) and cut once no name up forwards over it, while
the relay that wanted it cut is still refused (or closed: dropped from the connection table).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from tests.test_reconnect import until
from tests.test_review55a_refuted import Stranger, with_stranger
from troth import limits
from troth.node.access import AccessRequest, Decision
from troth.node.channel_ends import ChannelEnd
from troth.routing import Address, AllowSet, RoutedMessage
from troth.transport.connection import Connection


class _Counted(Address):
    """An address that counts its look-ups (every hash of it in a dict or set)."""

    __slots__ = ()
    looked_up = 0

    def __hash__(self) -> int:
        _Counted.looked_up += 1
        return tuple.__hash__(self)


def _connection(number: int) -> Connection:
    """A connection of the node (not open: its allow-set is all the cut touches), whose
    address counts its look-ups, holding two reply paths as a member's connection may."""
    made = Connection(
        kind="tcp", outgoing=False, listener=None, peer=f"192.0.2.1:{number}", max_reply_paths=8
    )
    made.address = _Counted("worker", f"tcp-{number:016x}")
    made.allow(_Counted("worker", f"end-{number:016x}"))
    made.allow(_Counted("worker", f"peer-{number:016x}"))
    return made


def _refuse_all(net: Stranger) -> None:
    def decide(request: AccessRequest) -> Decision:
        return Decision(False, ("revoked",))

    net.relay.decide = decide
    net.relay._recheck(net.relay.clock())


async def _not_reached(net: Stranger, to_b: Address) -> None:
    """A new message 1 straight to `to_b` is dropped at the hub: b gets nothing."""
    before, dropped = len(net.mine()), net.hub_tcp.counters.dropped_messages
    net.send(f"{to_b}/service/channels")
    await until(lambda: net.hub_tcp.counters.dropped_messages > dropped or len(net.mine()) > before)
    assert len(net.mine()) == before


def test_an_owner_naming_a_hop_of_its_own_is_still_cut_at_its_connection(
    tmp_path: Path,
) -> None:
    """Relays 1: b's relay as `create` makes it for a message 1 whose return route named one
    more hop past b's connection (which the hub accepted). Refused, the stranger that reached
    b through the name no longer reaches b at that connection, nor b the stranger; before,
    both went on."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        second = await net.receive()
        to_b = second.return_route[0]
        relay = net.relay.relays["b"]
        net.relay.relays["b"] = replace(relay, beyond=(Address("worker", "b-own-hop"),))
        _refuse_all(net)
        assert net.relay.relays["b"].refused
        await _not_reached(net, to_b)
        (arrived,) = net.mine()
        to_hub, to_stranger = arrived.return_route[:2]
        stranger = net.hub_tcp.connection(to_stranger)
        assert stranger is not None
        dropped, sent = net.hub_tcp.counters.dropped_messages, stranger.frames_sent
        await net.b.router.route(RoutedMessage((to_hub, to_stranger), (), b"from b"))
        await until(lambda: net.hub_tcp.counters.dropped_messages > dropped)
        assert stranger.frames_sent == sent

    with_stranger(tmp_path, test)


def test_an_owners_connection_pushed_out_of_its_earlier_ones_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relays 2, with a window of one earlier connection (MAX_CHANNELS_PER_MEMBER, 256, in a
    node): the stranger reached b over its first connection; b creates its name again over a
    second connection, then a third, which pushes the first out of `Relay.earlier`; refused,
    the stranger does not reach b at the first. Before, it did."""
    monkeypatch.setattr(limits, "MAX_CHANNELS_PER_MEMBER", 1)

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        second = await net.receive()
        to_b = second.return_route[0]
        assert net.hub.listening is not None
        port = net.hub.listening[1]
        for host in ("localhost", "127.1"):
            await net.b.create_relay("b", f"/tcp/{host}:{port}")
        relay = net.relay.relays["b"]
        assert len(net.b_tcp.connections()) == 3
        assert to_b not in relay.earlier
        assert relay.connection != to_b
        _refuse_all(net)
        assert relay.refused
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)


def test_a_cut_costs_what_the_connections_hold_not_every_one_times_every_one_cut(
    tmp_path: Path,
) -> None:
    """Relays 3: b holds K names over K connections of its own among N, each connection holding
    two reply paths; refused, the cut looked addresses up 2 x N x K times (65,536 here); now
    about N + K times each connection's share."""
    count, cut = 256, 64

    async def test(net: Stranger) -> None:
        connections = [_connection(number) for number in range(count)]
        net.relay.sources = lambda: connections
        b = net.relay.relays["b"]
        net.relay.relays = {
            f"b{number}": replace(b, connection=connections[number].address)
            for number in range(cut)
        }
        _Counted.looked_up = 0
        _refuse_all(net)
        assert all(relay.refused for relay in net.relay.relays.values())
        looked_up = _Counted.looked_up
        assert looked_up <= 8 * (count + cut), looked_up

    with_stranger(tmp_path, test)


def test_forget_each_forgets_what_forget_would_either_way_round() -> None:
    """Relays 3, the fix: `forget_each` leaves an allow-set as `forget` of each address does,
    whether it goes through the addresses (fewer) or what the set holds (fewer)."""
    held, paths = Address("worker", "held"), [Address("worker", f"p{n}") for n in range(6)]
    for forgotten in ({paths[0], held}, {*paths[:5], held}):
        for many in (False, True):
            addresses = set(forgotten) | (
                {Address("worker", f"other{n}") for n in range(20)} if many else set()
            )
            one, each = (AllowSet(max_reply_paths=8) for _ in range(2))
            for allowed in (one, each):
                allowed.hold(held)
                for path in paths:
                    allowed.allow(path)
            for address in addresses:
                one.forget(address)
            each.forget_each(addresses)
            for address in (*paths, held):
                assert one.allows(address) == each.allows(address)
            assert (one.reply_paths, one.held) == (each.reply_paths, each.held)


def test_a_connection_a_refusal_left_uncut_is_cut_once_no_name_up_forwards_over_it(
    tmp_path: Path,
) -> None:
    """Relays 4: d, another identity over b's connection, holds a name up when b is refused
    (b's connection is left uncut); then d's channel closes. The stranger that reached b no
    longer reaches it at its connection; before, it did for good."""

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        second = await net.receive()
        to_b = second.return_route[0]
        relays = net.relay.relays
        relays["d"] = replace(relays["b"], channel="d-channel")  # (its channel not found:
        # not decided again, up)

        def decide(request: AccessRequest) -> Decision:
            return Decision(request.arguments != "b", ("revoked",))

        net.relay.decide = decide
        net.relay._recheck(net.relay.clock())
        assert relays["b"].refused
        assert relays["d"].lost_at is None
        closed = cast(ChannelEnd, SimpleNamespace(id="d-channel", caller=None))
        for hook in net.hub.channels.closed_hooks:
            if getattr(hook, "__self__", None) is net.relay:
                hook(closed)
        assert relays["d"].lost_at is not None
        net.relay._recheck(net.relay.clock())  # the next maintenance round
        await _not_reached(net, to_b)

    with_stranger(tmp_path, test)
