"""Review 49f (refuted): attacks on secure channels and the node's listener that the code
already met (each a passing test; sans-IO cores and the channel manager on the in-memory
transport).

- An authenticated peer that opens a channel, uses it (an echo, a message cut short) and
  closes it, 40 times over: the hub holds nothing of it afterwards (channel ends, worker
  addresses, half-open slots, per-source and per-peer counts, reassembly budgets, the
  connection's held endpoints), only what it held after the first round.
- A peer that answers message 2 and never sends message 3: its half-open slot is freed by the
  handshake timer, and a newcomer from the same source opens a channel.
- A message 3 of the right length and garbage, then the real one: the garbage is dropped and
  counted, the handshake goes on and completes.
- Fragments with a duplicate offset, an overlapping offset, or a total that changes between
  fragments (authenticated: the peer's own violation): the channel closes (`protocol`) and
  gives back every byte it held of the peer's budget.
- A message of exactly `max_message` bytes (its routed header included) is taken, and one byte
  more is refused by the sender (`too large`, typed) and, forged, by the receiver.
"""

from __future__ import annotations

import pytest

from tests.support.channels import T, World, closed, dropped, make_world, pump
from tests.test_channel_manager import HUB, Net, echo, message_1, run, send_fragments, until
from troth.channel import (
    ChannelSettings,
    ChannelState,
    DropReason,
    ReassemblyBudget,
    Received,
    SecureChannel,
)
from troth.channel.payloads import FRAGMENT, Kind
from troth.errors import ChannelError, ChannelFailure
from troth.node.channels import ChannelLimits
from troth.routing import parse_route

S = ChannelState
F = ChannelFailure


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def test_a_peer_that_opens_and_closes_channels_in_a_loop_leaves_nothing_behind() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub()
        a = net.peer("10.0.0.3")

        async def cycle(n: int) -> None:
            end = await a.manager.open(parse_route(HUB))
            assert await echo(a, end, f"round {n}") == f"round {n}"
            if n % 2:  # a message cut short: held on the hub until the channel goes
                await send_fragments(a, end, 200_000, 1)
            await end.close()
            await until(lambda: not hub.manager.ends)

        def state() -> tuple[int, ...]:
            manager = hub.manager
            (connection,) = hub.transport.connections()
            return (
                len(hub.router._workers),
                len(manager._half_open),
                len(manager._users),
                len(manager._budgets),
                len(manager._budget_of),
                len(manager._per_source),
                len(manager._over),
                len(manager._opening_over),
                len(connection.allowed._held),
                manager._reassembly.places,  # reassembly bytes held on the node
            )

        await cycle(0)
        before = state()
        for n in range(1, 40):
            await cycle(n)
        assert state() == before
        assert before[1:8] == (0,) * 7
        assert before[-1] == 0

    run(test)


def test_a_peer_that_never_sends_message_3_gives_its_slot_back_by_the_timer() -> None:
    async def test(net: Net) -> None:
        limits = ChannelLimits(max_half_open_per_source=2, handshake_timeout=0.2)
        hub = await net.hub(limits=limits)
        flooder = net.peer("10.0.0.3")  # answers come back to it; it never sends message 3
        for n in range(2):
            await flooder.router.route(message_1(f"never-{n}"))
        counters = hub.manager.counters
        await until(lambda: counters.handshakes_started == 2)
        await until(lambda: counters.handshakes_timed_out == 2)
        assert not hub.manager.ends
        end = await flooder.manager.open(parse_route(HUB))  # the same source, a real one
        assert await echo(flooder, end, "in") == "in"
        assert counters.refused_half_open_per_source == 0

    run(test)


def test_a_garbage_message_3_of_the_right_length_is_dropped_and_the_handshake_goes_on(
    world: World,
) -> None:
    a, b = world.initiator(), world.responder()
    (first,) = a.outgoing()
    b.receive(first, T)
    (second,) = b.outgoing()
    a.receive(second, T)
    (third,) = a.outgoing()
    garbage = third[:3] + bytes(len(third) - 3)  # its length and type, zeros for the rest
    assert dropped(b.receive(garbage, T)) == [DropReason.UNDECRYPTABLE]
    assert (b.state, b.handshaking) == (S.AWAITING_MESSAGE_3, True)
    b.receive(third, T)
    assert b.state is S.OPEN


def _fragment(sender: SecureChannel, message_id: int, total: int, offset: int, size: int) -> bytes:
    sender._emit([(Kind.FRAGMENT, (FRAGMENT.pack(message_id, total, offset), bytes(size)))])
    (sent,) = sender.outgoing()
    return bytes(sent)


@pytest.mark.parametrize(
    "second",
    [(7, 20_000, 0, 5_000), (7, 20_000, 2_000, 5_000), (7, 30_000, 5_000, 5_000)],
    ids=["duplicate-offset", "overlapping-offset", "changed-total"],
)
def test_inconsistent_fragments_close_the_channel_and_give_back_the_budget(
    world: World, second: tuple[int, int, int, int]
) -> None:
    a, b = pump_open(world)
    budget = ReassemblyBudget(1 << 20)
    assert b.share_reassembly_budget(budget) is None
    assert b.receive(_fragment(a, 7, 20_000, 0, 5_000), T) == []
    assert budget.held > 0
    events = b.receive(_fragment(a, *second), T)
    if second[2] == 2_000:  # an overlap is seen as the message completes
        assert events == []
        events = b.receive(_fragment(a, 7, 20_000, 7_000, 13_000), T)
    assert closed(events).reason is F.PROTOCOL
    assert budget.held == 0


def pump_open(world: World, settings: ChannelSettings | None = None) -> tuple[SecureChannel, ...]:
    a, b = world.initiator(settings), world.responder(settings)
    pump(a, b)
    assert a.state is b.state is S.OPEN
    return a, b


def test_a_message_at_exactly_the_limit_is_taken_and_one_byte_more_refused(world: World) -> None:
    limit = 200_000
    a, b = pump_open(world, ChannelSettings(max_message=limit))
    header = b"\x00\x05route"  # a prefix counts toward the limit, as a routed header does
    a.send(bytes(limit - len(header)), header)
    events = [e for p in a.outgoing() for e in b.receive(p, T)]
    assert events == [Received(header + bytes(limit - len(header)))]
    with pytest.raises(ChannelError) as refused:
        a.send(bytes(limit - len(header) + 1), header)
    assert refused.value.reason is F.TOO_LARGE
    assert a.state is S.OPEN
    forged = _fragment(a, 99, limit + 1, 0, 5_000)  # what a peer could forge: closed, typed
    assert closed(b.receive(forged, T)).reason is F.TOO_LARGE
