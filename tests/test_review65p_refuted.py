"""Review 65p, relays and the TCP transport under a hostile peer: attacks that did not work.

A stranger reaches a hub over TCP, where b, a member without a listening port, holds `/relay/b`
(tests/test_review55a_refuted.py's fixture). Each test is a real attempt and fails if the
defence it names breaks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.test_reconnect import until
from tests.test_review55a_refuted import MESSAGE_1, Stranger, with_stranger
from troth.routing import Address, RoutedMessage, parse_route
from troth.transport import frame


def _origins_at_b(net: Stranger) -> list[str]:
    """The source b counts each stranger's message under (its connection to the hub's
    `origin`, what b's per-source limits key on)."""
    (to_hub,) = net.b_tcp.connections()
    return [to_hub.origin(m.return_route) for m in net.mine()]


def test_a_forged_host_tag_in_the_return_route_does_not_make_a_new_source_behind_the_relay(
    tmp_path: Path,
) -> None:
    """The stranger puts tagged connection addresses of made-up hosts in its return route (as a
    relay would name other senders) to be counted at b as many sources: b keys on the second
    hop of the return route, which the hub puts there (its own connection to the stranger), so
    every message is the stranger's one source, the forged tags nowhere in it."""

    forged = [
        Address("worker", f"tcpabcdefghijk-h{n:08x}-{n:016x}") for n in (0x1111, 0x2222, 0x3333)
    ]

    async def test(net: Stranger) -> None:
        net.send("/relay/b/service/channels")
        for address in forged:
            net.send("/relay/b/service/channels", (address, *forged))
        await until(lambda: len(net.mine()) == 1 + len(forged))
        origins = set(_origins_at_b(net))
        assert len(origins) == 1
        (origin,) = origins
        assert " via host " in origin  # the hub's tag for the stranger's host
        assert not any(f"h{n:08x}" in origin for n in (0x1111, 0x2222, 0x3333))

    with_stranger(tmp_path, test)


def test_one_host_over_many_connections_to_the_relay_is_one_source_behind_it(
    tmp_path: Path,
) -> None:
    """Half-open handshakes through the relay from one host over three connections (to spread
    them over sources at b): the hub tags each connection's address with the host, so b
    counts them as one source, its per-source limits whole."""

    async def test(net: Stranger) -> None:
        assert net.hub.listening is not None
        more = [await asyncio.open_connection(*net.hub.listening) for _ in range(2)]
        try:
            net.send("/relay/b/service/channels")
            for _, writer in more:
                message = RoutedMessage(parse_route("/relay/b/service/channels"), (), MESSAGE_1)
                writer.write(frame(message.encode()))
            await until(lambda: len(net.mine()) == 3)
            hops = {m.return_route[1] for m in net.mine()}
            assert len(hops) == 3  # three connections at the hub
            assert len(set(_origins_at_b(net))) == 1
        finally:
            for _, writer in more:
                writer.close()

    with_stranger(tmp_path, test)
