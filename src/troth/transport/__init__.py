"""Transports (asyncio adapters) for the router: TCP, and an in-memory network for tests and
simulations. Frames: version byte, 4-byte length, routed message (troth.transport.framing,
sans-IO)."""

from troth.transport.connection import Connection, Listener
from troth.transport.framing import FRAME_VERSION, FrameReader, check_header, frame
from troth.transport.memory import MemoryNetwork, MemoryTransport
from troth.transport.settings import TcpCounters, TcpSettings
from troth.transport.tcp import TcpConnection, TcpTransport

__all__ = [
    "FRAME_VERSION",
    "Connection",
    "FrameReader",
    "Listener",
    "MemoryNetwork",
    "MemoryTransport",
    "TcpConnection",
    "TcpCounters",
    "TcpSettings",
    "TcpTransport",
    "check_header",
    "frame",
]
