"""Which process a pid is now: its start time, which tells a process from a later one given
the same pid (a daemon's status file outlives a daemon killed by SIGKILL, and its pid may be
reused: docs/protocols.md, "Nodes")."""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct

__all__ = ["own_user", "peer_credentials", "send_signal", "start_time", "still"]

log = logging.getLogger("troth.node.daemon")
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid (unix(7))


def start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after boot (/proc/PID/stat, field 22:
    proc(5)); None when that cannot be told (no such process, no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except (OSError, OverflowError, ValueError):
        return None
    # the command name (field 2) is in parentheses and may hold any byte: the fields after
    # it start past its last ")"; field 22 is the 20th of those (field 3 the 1st)
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def still(pid: int, started: object) -> bool:
    """Whether `pid` is still the process that started at `started` (what a status file
    recorded): True when nothing was recorded or the time cannot be told now (no /proc)."""
    if type(started) is not int:
        return True
    now = start_time(pid)
    return now is None or now == started


def send_signal(pid: int, started: object, sig: signal.Signals) -> None:
    """Send `sig` to `pid` only while it is the process that started at `started` (`still`);
    ProcessLookupError when it is not (or is gone). Where the OS has them (Linux 5.3) through
    a pidfd opened before the check, so the pid cannot be given to another process between the
    check and the signal."""
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError) as exc:  # no pidfds here: checked, then signalled
        if isinstance(exc, ProcessLookupError):
            raise
        if not still(pid, started):
            raise ProcessLookupError(pid) from None
        os.kill(pid, sig)
        return
    try:
        if not still(pid, started):
            raise ProcessLookupError(pid)
        signal.pidfd_send_signal(handle, sig)
    finally:
        os.close(handle)


def peer_credentials(connection: socket.socket) -> tuple[int, int] | None:
    """The pid and uid of the process at the other end of Unix socket `connection` (the one
    that listens, or the one that connected), as the kernel tells them (SO_PEERCRED:
    unix(7)); None where that cannot be told (no SO_PEERCRED on this platform)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, uid, _ = _PEERCRED.unpack(
            connection.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size)
        )
    except (OSError, struct.error):
        return None
    return pid, uid


def own_user(connection: socket.socket) -> None:
    """PermissionError unless the client of a node's control socket `connection` is this
    user's process or root's, as the kernel tells it (SO_PEERCRED): the socket's modes are not
    the only check (a node directory left open to others, a socket made under a loose umask
    before its chmod, let another user run every operation: review 53u, control 2). Where the
    platform cannot tell, the modes are."""
    peer = peer_credentials(connection)
    if peer is not None and peer[1] not in (os.getuid(), 0):
        log.warning("control connection of uid %d (pid %d) refused: not this user", *peer[::-1])
        raise PermissionError(f"uid {peer[1]} may not use this node's control socket")
