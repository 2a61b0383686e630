"""Review 34e, handshakes (the node's responder ends under a flood of messages 1).

Handshakes 1: every message 1 made a responder end, and a timer `handshake_timeout` (10 s)
later to expire its handshake, which held the end (its channel, handshake state, allow-set,
future, worker addresses: about 5.4 KB) until it fired, whatever became of the end before: a
message 1 that cannot be answered (a low-order key, 36 bytes) is forgotten at once and frees
its half-open slot, so no limit refused the next one, and the node held 10 s of them — about
19,000, 100 MB, at the 1,900 a second one core made of them here. A timer now goes with its
end when the end is forgotten.
"""

from __future__ import annotations

import gc
import weakref

from tests.support.channels import packet
from tests.test_channel_manager import HUB, Net, attacker, run, until
from troth.node.channels import ChannelEnd
from troth.routing import Address, RoutedMessage, parse_route


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
