"""Review 62f: attacks on the TCP transport and listener that did NOT work (each test fails if
the defence it exercises breaks): an IPv4-mapped (or NAT64) IPv6 peer counted as a source apart
from its IPv4 address; a started frame kept alive by a byte per sweep; the read buffer kept by
a frame of exactly the largest size."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from troth import limits
from troth.routing import Router
from troth.transport import Listener, TcpSettings, TcpTransport
from troth.transport.connection import host_tag
from troth.transport.framing import FRAME_HEADER, FRAME_VERSION, FrameReader, frame
from troth.transport.liveness import Liveness
from troth.transport.settings import TcpCounters
from troth.transport.tcp import TcpConnection


class _Socket(asyncio.Transport):
    """An accepted socket as asyncio hands it to the protocol: its peer's address, and whether
    the transport aborted it (refused)."""

    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.peer, 40000) if name == "peername" else default

    def abort(self) -> None:
        self.aborted = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


@pytest.mark.parametrize("other", ["::ffff:192.0.2.7", "64:ff9b::192.0.2.7"])
def test_an_ipv4_peer_in_ipv6_form_is_the_same_source_as_its_ipv4_address(other: str) -> None:
    """The per-source cap at 1: a peer at 192.0.2.7 is accepted; the same host arriving as an
    IPv4-mapped address (a dual-stack socket) or through a NAT64 translator is refused by that
    cap, and both carry the same host tag for the nodes they are relayed to."""

    async def test() -> None:
        transport = TcpTransport(Router(), TcpSettings(max_connections_per_source=1))
        admitted = []
        for peer in ("192.0.2.7", other):
            socket = _Socket(peer)
            connection = TcpConnection(transport, outgoing=False, listener=Listener(), peer="?")
            connection.connection_made(socket)
            admitted.append((connection, socket))
        (first, first_socket), (second, second_socket) = admitted
        assert not first_socket.aborted
        assert second_socket.aborted
        assert transport.counters.refused_per_source == 1
        assert second.host == first.host == "192.0.2.7"
        assert host_tag(second.address) == host_tag(first.address) is not None
        if first._consumer is not None:
            first._consumer.cancel()

    asyncio.run(test())


def test_a_started_frame_fed_a_byte_a_sweep_stalls_out_from_its_start() -> None:
    """A header announcing the largest frame, then one byte before each sweep (every quarter
    of the frame timeout): the bytes do not restart the stalled-frame clock, and the sweep
    closes the connection once the frame is older than the timeout."""
    settings, counters = TcpSettings(), TcpCounters()
    owner = type("Owner", (), {"settings": settings, "counters": counters})()
    reader, liveness = FrameReader(), Liveness()
    liveness.opened(0.0)
    assert reader.feed(FRAME_HEADER.pack(FRAME_VERSION, limits.MAX_TRANSPORT_FRAME), 0.0) == []
    step = settings.sweep_interval
    now, why = 0.0, None
    while why is None and now < 2 * settings.frame_timeout:
        now += step
        assert reader.feed(b"\0", now) == []
        why = liveness.overdue(now, 0, reader, False, owner)
    assert why == f"a frame stalled for {settings.frame_timeout} s"
    assert settings.frame_timeout < now <= settings.frame_timeout + step
    assert counters.closed_stalled == 1


def test_a_frame_of_exactly_the_largest_size_leaves_no_large_buffer_behind() -> None:
    """A frame of exactly `MAX_TRANSPORT_FRAME` is read whole (one more byte is refused on its
    header), and the next sweep gives its buffer back: the small one again."""
    reader = FrameReader()
    body = bytes(limits.MAX_TRANSPORT_FRAME)
    assert reader.feed(frame(body), 0.0) == [body]
    assert reader.capacity > reader.small
    assert reader.settle()  # the sweep after it
    assert reader.capacity == reader.small
    with pytest.raises(Exception, match="over the limit"):
        FrameReader().feed(FRAME_HEADER.pack(FRAME_VERSION, limits.MAX_TRANSPORT_FRAME + 1), 0.0)
