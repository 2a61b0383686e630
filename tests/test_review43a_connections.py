"""Review 43a, connections (who a new TCP connection evicts at the connection cap).

Connections 1: review 41b (connections 1) made a newcomer at the cap evict, of the connections
that brought no frame yet, the oldest of the source address holding the most connections — all
its connections counted, the ones that brought frames too. A legitimate source that holds
several active connections (a busy peer, a NAT in front of several) then held "the most", and
its next connection, accepted and a round trip from its first frame, was the one evicted by
the next newcomer, however young it was: an attacker with many addresses (an IPv6 /48 is 65,536
sources), each holding fewer connections than that source, filled the cap and evicted each new
connection of it with one connection of its own, while its own frameless ones stayed. A
newcomer now evicts the oldest frameless connection of the source holding the most frameless
ones (the flood of review 41b still gives up its own).
"""

from __future__ import annotations

from tests.test_transport_tcp import Server, answer, run, until
from troth.transport import TcpSettings


def test_a_busy_sources_new_connection_is_not_the_one_evicted() -> None:
    """Connections 1: cap 6. 127.0.0.3 holds three active connections (each answered); the
    attacker opens one that sends nothing from each of 127.0.0.2 and 127.0.0.4; 127.0.0.3
    opens a fourth (its first frame not sent yet); the attacker connects from 127.0.0.5: one
    connection is evicted, and the fourth's request is answered.
    Was a strict xfail until the newcomer evicted the oldest frameless connection of the
    source holding the most frameless connections, not the most connections."""

    async def test(server: Server) -> None:
        counters = server.transport.counters
        busy = [await server.client("127.0.0.3") for _ in range(3)]
        for streams in busy:
            assert await answer(streams) == b"ping"
        idle = [await server.client(host) for host in ("127.0.0.2", "127.0.0.4")]
        await until(lambda: counters.accepted == 5)
        fourth = await server.client("127.0.0.3")
        await until(lambda: counters.accepted == 6)
        idle.append(await server.client("127.0.0.5"))  # kept open, as the others
        await until(lambda: counters.accepted == 7)
        assert counters.evicted == 1
        assert await answer(fourth) == b"ping"

    run(test, TcpSettings(max_connections=6))
