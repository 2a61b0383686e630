"""Transports: TCP (asyncio), length-prefixed frames with a version byte and a hard maximum."""

from troth.transport.framing import FRAME_VERSION, check_header, frame
from troth.transport.tcp import Listener, TcpConnection, TcpTransport

__all__ = ["FRAME_VERSION", "Listener", "TcpConnection", "TcpTransport", "check_header", "frame"]
