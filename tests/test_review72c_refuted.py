"""Review 72c: attacks on a relay's cut marks and the no-route notices they bring (review 71s,
relaywait 1; review 71w, wave4a 1) that did not work, each a passing test that fails if the
defence it names breaks.

1. Stale marks refusing (or letting through) traffic: a connection cut off from an address,
   then reaching it again (the cut member back, its name allowed again), or never again: a
   mark changes no routing decision, only whether a drop is answered: what an allow-set lets
   through is what it would without marks (`forget` of each address, review 66n's
   equivalence), a marked address is never one it allows, and it keeps at most
   `max_reply_paths` marks, whatever the order of reaches, holds, cuts and forgets. (Its
   first run found notices 1: a mark on an address still fixed; tests/test_review72c_notices.py.)
2. A notice loop between two relays (each the other's only connection, each connection cut
   off from itself, so each passes the other's notice back to it): each pass takes one
   address off the sender route and puts one on the way, so the loop ends within
   MAX_ROUTE_LENGTH passes even with budgets that never run out, one notice out for each in.
3. A member cut off (its relay refused) and back: still on its old connection, its notices are
   passed only toward the connections cut off from it, one for each it sends, within that
   connection's budget (no reflection to a connection that never reached it, no
   amplification); back on a new connection, toward none of its old senders (they never
   reached the new one).
4. Learning who was cut from the notices: the notice for a hop the connection was cut off from
   (its owner refused, say its credential revoked) is the notice for one whose connection
   closed (a member restarted), so a sender learns only that the hop is gone, not why.
5. The cut identity coming back legitimately (the collector rotated, then created its name
   again): after the one notice that closed the stale channel, the next batches reach it over
   the new channel with no further notice: no stale mark is answered for the new way.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import troth.node.notice_budgets as notice_budgets
from tests.support.nodes import MemNet, run_memnet
from tests.test_attacks_review19 import GRACE
from tests.test_review71w_refuted import _hub, _send, _settle
from tests.test_review71w_wave4a import _Chain, _connection, _link
from tests.test_trace_node import step
from tests.test_trace_pins import rotated_collector
from troth import limits
from troth.node.no_route import NoRouteNotices
from troth.routing import Address, AllowSet, RoutedMessage
from troth.routing.notice import NOTICE_SERVICE, no_route, parse_no_route
from troth.transport.connection import Connection

if TYPE_CHECKING:
    from troth.node.channel_ends import ChannelEnd
    from troth.node.channels import ChannelManager

_ADDRESSES = [Address("worker", f"tcp-{number}") for number in range(12)]
_CHANNEL = Address("worker", "chan-a.dec")


def _endless_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Budgets that never run out (what bounds a test is then something else)."""
    monkeypatch.setattr(notice_budgets, "NOTICE_BURST", 10**6)
    monkeypatch.setattr(notice_budgets, "NOTICE_CONNECTION_BURST", 10**6)


def _no_refill(monkeypatch: pytest.MonkeyPatch) -> None:
    """Budgets that never refill within a test."""
    monkeypatch.setattr(notice_budgets, "NOTICE_INTERVAL", 1e9)
    monkeypatch.setattr(notice_budgets, "NOTICE_CONNECTION_INTERVAL", 1e9)


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["allow", "hold", "forget", "cut", "permit"]),
        st.sets(st.sampled_from(_ADDRESSES), min_size=1, max_size=5),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS)
def test_marks_change_no_routing_decision(ops: list[tuple[str, set[Address]]]) -> None:
    """Refuted 1: the same operations on an allow-set whose cuts mark (`forget_each`) and on
    one that forgets each address instead: the same addresses allowed at every step; marked
    ones never allowed; at most `max_reply_paths` marks."""
    marked, plain = AllowSet(max_reply_paths=4), AllowSet(max_reply_paths=4)
    for op, addresses in ops:
        for address in sorted(addresses, key=str):
            if op == "cut":
                continue
            for allowed in (marked, plain):
                getattr(allowed, op)(address)
        if op == "cut":
            marked.forget_each(addresses)
            for address in addresses:
                plain.forget(address)
        for address in _ADDRESSES:
            allows = marked.allows(address)
            assert allows == plain.allows(address)
            assert not (allows and marked.cut_from(address))
        assert sum(marked.cut_from(a) for a in _ADDRESSES) <= marked.max_reply_paths


def _host(number: int) -> Connection:
    """A connection the hub accepted from host 192.0.2.`number` (one source each)."""
    peer = f"192.0.2.{number}:5000"
    return Connection(kind="tcp", outgoing=False, listener=None, peer=peer, max_reply_paths=8)


class _Relay:
    """One relay of two linked only to each other: its connection to the other (cut off from
    itself, so a notice from the other may go back to it) and its link channel over it."""

    def __init__(self, name: str) -> None:
        self.connection = _connection()
        address = self.connection.address
        self.connection.allow(address)
        self.connection.allowed.forget_each({address})
        self.link = _link(address, f"{name}-link")
        self.link.source = self.connection
        self.hub = _Chain((self.link,))
        self.hub.router.has = lambda hop: hop == address
        self.notices = NoRouteNotices(cast("ChannelManager", self.hub))

    def take(self, message: RoutedMessage) -> None:
        """A notice the other sent over its link comes out of this one's."""
        end = cast("ChannelEnd", self.link)
        self.notices.received(end, RoutedMessage((NOTICE_SERVICE,), (), message.payload))


def test_a_notice_loop_between_two_relays_ends_within_the_route_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refuted 2: relay `one` gets a notice whose sender route names the connections between
    the two relays back and forth; each passes it to the other until the sender route is one
    address (then it closes nothing: no such channel) or the way is MAX_ROUTE_LENGTH long."""
    _endless_budgets(monkeypatch)

    async def test() -> None:
        one, two = _Relay("one"), _Relay("two")
        pair = (one.connection.address, two.connection.address)
        end = Address("worker", "chan-a")  # (no channel end here: the last closes nothing)
        sender = (*(pair[n % 2] for n in range(limits.MAX_ROUTE_LENGTH - 2)), end)
        dead = Address("worker", "tcp-dead")
        notices = [RoutedMessage((), (), no_route((dead,), sender))]
        to, other, passes = one, two, 0
        while notices and passes < 4 * limits.MAX_ROUTE_LENGTH:
            for message in notices:
                to.take(message)
            await _settle()
            notices, to.hub.sent[:] = list(to.hub.sent), []
            assert len(notices) <= 1  # one out for each in
            passes += len(notices)
            to, other = other, to
        assert not notices
        assert passes == len(sender) - 1  # the sender route shrinks by one each pass
        assert passes < limits.MAX_ROUTE_LENGTH

    asyncio.run(test())


def test_a_cut_member_back_is_passed_no_notice_toward_anyone_its_cut_did_not_touch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refuted 3: the refused member's connection `o` was a reply path of the cut senders (cut
    off from it by the refusal), of no other; its notices naming each sender of the hub go
    back only toward the cut ones, one each; back on a new connection, it has nothing passed
    toward any; and a flood from `o` gets at most its budget through, at most NOTICE_BURST
    toward any one sender."""
    _no_refill(monkeypatch)

    async def test() -> None:
        old, new = Address("worker", "tcp-o"), Address("worker", "tcp-o2")
        senders = [_host(n) for n in range(16)]
        cut = senders[::2]  # (the others never reached `o`)
        for sender in cut:
            sender.allow(old)
            sender.allowed.forget_each({old})
        links = tuple(_link(s.address, f"to-{n}") for n, s in enumerate(senders))
        for link, sender in zip(links, senders, strict=True):
            link.source = sender
        hub = _Chain(links)
        hub.router.has = lambda hop: hop in {s.address for s in senders}
        notices = NoRouteNotices(cast("ChannelManager", hub))
        dead = Address("worker", "tcp-dead")
        to_cut = {link.enc for link, s in zip(links, senders, strict=True) if s in cut}

        async def notify(via: Address, among: list[Connection]) -> list[RoutedMessage]:
            member = cast("ChannelEnd", _link(via, f"member-over-{via.value}"))
            for sender in among:
                notice = no_route((dead,), (sender.address, _CHANNEL))
                notices.received(member, RoutedMessage((NOTICE_SERVICE,), (), notice))
            await _settle()
            sent, hub.sent[:] = list(hub.sent), []
            return sent

        first = await notify(old, senders)
        assert sorted(str(m.onward[0]) for m in first) == sorted(str(enc) for enc in to_cut)
        assert all(parse_no_route(m.payload)[0] == (old, dead) for m in first)
        assert await notify(new, senders) == []
        flood = await notify(old, cut * 10)
        assert {m.onward[0] for m in flood} <= to_cut
        assert len(first) + len(flood) <= limits.NOTICE_CONNECTION_BURST
        for enc in to_cut:
            assert sum(m.onward[0] == enc for m in (*first, *flood)) <= limits.NOTICE_BURST

    asyncio.run(test())


def test_a_hop_cut_off_is_answered_as_one_whose_connection_closed() -> None:
    """Refuted 4: a sender reached `cut` (its owner then refused: still open, still served) and
    `closed` (its member restarted: no worker serves it); a packet to each gets the same
    notice, the hop aside: nothing tells a refusal from a restart."""

    async def test() -> None:
        sender = _connection()
        router, hub = _hub(sender)
        cut, closed = Address("worker", "tcp-cut"), Address("worker", "tcp-closed")

        async def serve(message: RoutedMessage, source: object) -> None:
            pass

        router.register(cut, serve)
        for hop in (cut, closed):
            sender.allow(hop)
        sender.allowed.forget_each({cut})
        for hop in (cut, closed):
            await _send(router, sender, hop)
        await _settle()
        told = [m.payload for m in cast("Any", hub).sent]
        assert told == [no_route((hop,), (_CHANNEL,)) for hop in (cut, closed)]

    asyncio.run(test())


def test_the_cut_collector_back_is_reached_with_no_further_notice(tmp_path: Path) -> None:
    """Refuted 5: after the one notice that closed the agent's stale channel (review 71s), two
    more batches reach the collector over its new channel, and nothing more is answered by a
    notice at the hub (no stale mark names the new way)."""

    async def test(net: MemNet) -> None:
        _, agent, client, _ = await rotated_collector(net)
        hub = net.hub
        assert hub is not None
        for number in (1, 2):
            queued = client.record(step(number))
            await client.flush(20)
            assert queued.result() == number
        assert agent.channels.counters.closed_by_no_route == 1
        assert hub.channels.counters.no_route_notices_sent == 1

    run_memnet(test, tmp_path / "home", relay_grace=GRACE)
