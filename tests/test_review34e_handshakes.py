"""Review 34e, handshakes (the node's responder ends under a flood of messages 1).

Handshakes 1: every message 1 made a responder end, and a timer `handshake_timeout` (10 s)
later to expire its handshake, which held the end (its channel, handshake state, allow-set,
future, worker addresses: about 5.4 KB) until it fired, whatever became of the end before: a
message 1 that cannot be answered (a low-order key, 36 bytes) is forgotten at once and frees
its half-open slot, so no limit refused the next one, and the node held 10 s of them — about
19,000, 100 MB, at the 1,900 a second one core made of them here. A timer now goes with its
end when the end is forgotten.

Handshakes 2: at the global limit on handshakes in progress (256), a newcomer evicted the
oldest handshake of the source holding the most, but when no source held more than the
newcomer's would, it was refused: 256 sources holding one handshake each (the 256 /64s of
one residential IPv6 /56, or 256 IPv4 addresses), each sending one message 1 per handshake
timeout (26 a second in all), kept every other party from opening a channel to the node for
as long as they went on (review 28a counted a /64 as one source; this is 256 of them). The
oldest handshake of all now goes: a genuine one finishes within a round trip, so keeping
newcomers out takes 256 messages 1 per round trip, a flood the node's CPU meets anyway.
"""

from __future__ import annotations

import gc
import weakref

from tests.support.channels import packet
from tests.test_channel_manager import HUB, Net, attacker, echo, message_1, run, until
from troth.node.channels import ChannelEnd, ChannelLimits
from troth.routing import Address, RoutedMessage, Router, parse_route
from troth.transport.memory import MemoryTransport


def test_a_forgotten_responder_end_is_not_kept_alive_by_its_handshake_timer() -> None:
    """Handshakes 1: 100 messages 1 with a low-order key (message 2 cannot be made) leave
    no responder end alive once each is forgotten.
    Was a strict xfail until the manager cancelled an end's handshake timer as it forgot it."""

    async def test(net: Net) -> None:
        hub = await net.hub()
        forgotten: list[weakref.ref[ChannelEnd]] = []
        hub.manager.closed_hooks.append(lambda end: forgotten.append(weakref.ref(end)))
        flooder = attacker(net)
        listener = parse_route(f"{HUB}/service/channels")
        bad = packet(b"\x01" + bytes(32))  # a low-order point: no DH, no message 2
        for i in range(100):
            await flooder.route(RoutedMessage(listener, (Address("worker", f"r{i}"),), bad))
        await until(lambda: len(forgotten) == 100)
        assert hub.manager.counters.handshakes_started == 100
        assert not hub.manager.ends
        gc.collect()
        assert sum(ref() is not None for ref in forgotten) == 0

    run(test)


def test_sources_that_each_hold_one_handshake_do_not_lock_newcomers_out() -> None:
    """Handshakes 2: a full half-open table where every source holds one handshake (256
    networks: one residential IPv6 /56, one message 1 each per handshake timeout) still lets
    a newcomer in: the oldest handshake goes for it, and its channel opens.
    Was a strict xfail until a full table gave up its oldest handshake when no source held
    more than the newcomer's would (it refused the newcomer)."""

    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_half_open=8))
        for n in range(8):  # eight /64s of one /56, a message 1 each, never finished
            flooder = Router()
            MemoryTransport(flooder, net.network, host=f"2001:db8:0:{n:x}::1")
            await flooder.route(message_1(f"flood-{n}"))
        counters = hub.manager.counters
        await until(lambda: counters.handshakes_started == 8)
        a = net.peer("10.0.0.3", limits=ChannelLimits(handshake_timeout=2.0))
        end = await a.manager.open(parse_route(HUB))
        assert (counters.evicted_half_open, counters.refused_half_open) == (1, 0)
        assert await echo(a, end, "in") == "in"

    run(test)
