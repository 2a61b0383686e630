"""Review 55k, transport 1: the sweep closed the connections review 55a's holds kept from
reading.

Review 55a (budget 1) holds every accepted connection of a source address past its share of
the routing budget, the ones it opens meanwhile too, until its frames are back within it
(troth.transport.holds). The node reads nothing of such a connection; but the sweep's
first-frame clock (`Liveness.overdue`) ran on: a connection opened while its address was held
was closed after `first_frame_timeout` (10 s) for "no frame", the node's own refusal to read
counted as the peer's silence (the stalled-frame clock skips a connection whose reading is
paused for this reason). An address's share is passed by whoever sends through it: a peer
behind the same NAT as a stranger whose frames to a relayed member that drains slowly wait
at the hub had each connection it opened meanwhile dropped, however often it tried. Now the
first-frame clock, as the stalled-frame one, does not run while the node holds the
connection's reading (docs/protocols.md, "TCP transport").

Was a strict xfail until `Liveness.overdue` skipped the first-frame clock while reading is
paused."""

from __future__ import annotations

import asyncio

from tests.support.held_source import HeldSources
from tests.test_reconnect import until


def test_a_connection_held_with_its_source_is_not_closed_for_sending_no_frame() -> None:
    """A stranger at 10.0.0.1 passes its share (its frames wait for a slow worker); a peer
    behind the same address connects: held from the start. A sweep past first_frame_timeout
    keeps it (before: closed, `closed_first_frame`); once the frames are routed it reads."""

    async def main() -> None:
        net = HeldSources()
        transport, settings = net.transport, net.settings
        net.over_share("10.0.0.1")
        peer, peer_socket = net.accept("10.0.0.1", 1001)
        assert peer_socket.paused  # held: the node reads nothing of it
        peer._check(peer.liveness.opened_at + settings.first_frame_timeout + 1)
        assert transport.counters.closed_first_frame == 0
        net.release.set()
        await until(lambda: transport.inbound.held == 0, 10)
        assert not peer_socket.paused
        await transport.close()

    asyncio.run(main())
