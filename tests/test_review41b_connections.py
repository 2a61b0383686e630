"""Review 41b, connections (who a new TCP connection evicts at the connection cap).

Connections 1: at the cap on accepted connections, a newcomer evicted the oldest connection
that had brought no frame yet, from any source address. A legitimate peer's connection brings
its first frame a round trip after it is accepted; an attacker that opens connections without
end, from one address, evicted each connection accepted before its own that had not brought a
frame yet: once its own older ones were gone, the legitimate newcomer's, before its first
frame arrived (under a flood of connections, one loop iteration accepts many, so a peer that
sends at once still loses). The per-source cap did not help: the evicted connections stopped
counting. A newcomer now evicts the oldest frameless connection of the source holding the most
connections (the fair share the eviction of active connections already used).
"""

from __future__ import annotations

import pytest

from tests.test_transport_tcp import Server, answer, run, until
from troth.transport import TcpSettings


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_a_flood_of_connections_from_one_address_does_not_evict_a_newcomer_from_another() -> None:
    """Connections 1: cap 4. A peer from 127.0.0.3 connects (its first frame not sent yet);
    127.0.0.2 then opens four connections that send nothing: the fourth evicts one of its own,
    and the newcomer's request is answered.
    Was a strict xfail until a newcomer evicted the oldest frameless connection of the source
    holding the most connections, not the oldest of all."""

    async def test(server: Server) -> None:
        counters = server.transport.counters
        newcomer = await server.client("127.0.0.3")
        await until(lambda: counters.accepted == 1)
        flood = []
        for n in range(4):
            flood.append(await server.client("127.0.0.2"))
            await until(lambda: counters.accepted == n + 2)  # noqa: B023
        assert counters.evicted == 1
        assert await answer(newcomer) == b"ping"

    run(test, TcpSettings(max_connections=4))
