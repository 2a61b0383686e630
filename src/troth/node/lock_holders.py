"""Whether a pid is a live process of this user, and what Linux's /proc tells of the flocks and
the files it holds (troth.node.daemon's part: `_is_our_node` tells a node's process by its
node.lock with these)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__: list[str] = []  # troth.node.daemon's private helpers only


def _alive(pid: int) -> bool:
    """Whether `pid` is a process this user may signal (one of another user's never is this
    user's node; a pid past what the platform's pid_t holds, from a damaged status file, is
    no process: it failed every status, stop and start in an OverflowError, review 49g, cli 5)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    return True


def _flock_holders(lock: Path) -> tuple[set[int], set[int]] | None:
    """From Linux /proc/locks: the pids holding an flock on `lock` (none when there is no such
    file), and every pid holding an flock on anything; None when that cannot be told."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return None
    try:
        info = lock.stat()
    except FileNotFoundError:
        info = None
    except OSError:
        return None
    ours: set[int] = set()
    anything: set[int] = set()
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5374403 0 EOF" ("->": waiting)
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            pid = int(fields[4])
            anything.add(pid)
            device = (int(major, 16), int(minor, 16))
            same = info is not None and int(inode) == info.st_ino
            if same and info and device == (os.major(info.st_dev), os.minor(info.st_dev)):
                ours.add(pid)
        except ValueError:
            continue
    return ours, anything


def _holds_flock_on(pid: int, lock: Path) -> bool:
    """Whether one of `pid`'s descriptors is `lock` (stat through /proc/PID/fd: the device as
    this process sees it) and holds an flock on it (/proc/PID/fdinfo "lock:" lines)."""
    try:
        info = lock.stat()
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in names:
        try:
            opened = os.stat(f"/proc/{pid}/fd/{fd}")
            if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as lines:
                for line in lines:  # "lock:\t1: FLOCK  ADVISORY  WRITE 1234 00:29:8 0 EOF"
                    fields = line.split()
                    if fields[:1] == ["lock:"] and fields[2:3] == ["FLOCK"]:
                        return True
        except OSError:
            continue
    return False


def _has_open(pid: int, path: Path) -> bool | None:
    """Whether one of `pid`'s descriptors is the file at `path` (None when its descriptors
    cannot be read: a process that made itself undumpable, no /proc)."""
    try:
        info = path.stat()
    except OSError:
        return False  # no node.lock: no node runs
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in names:
        with contextlib.suppress(OSError):
            opened = os.stat(f"/proc/{pid}/fd/{fd}")
            if (opened.st_dev, opened.st_ino) == (info.st_dev, info.st_ino):
                return True
    return False
