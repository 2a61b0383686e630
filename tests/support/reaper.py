"""What a test run starts dies with it, even when the run is killed (SIGKILL, a CI timeout).

Node daemons (`start_daemon`: a session of their own, made to outlive the command that
started them), the PostgreSQL server (pg_ctl: a daemon) and the tests' other children outlived
a pytest killed before its fixtures' teardown ran: two `troth.node` daemons left by a killed
run skewed a benchmark (review 68h, hygiene 1). The product is left as it is (a daemon started
by `troth node start` is meant to outlive the command); the run marks what it starts instead:

- `start_reaper` (tests/conftest.py's pytest_configure) puts $TROTH_TEST_RUN, a value of this
  run's own, in the environment every child of the run inherits (the daemon's and the
  server's too: both are given the environment they were started with), and starts this
  file as a watcher in a session of its own (a signal to the run's process group spares it);
- the watcher waits on a pidfd of the run's process and, once it has ended (any way), ends
  every process still carrying the mark, and their descendants: SIGTERM (a node stops as
  `troth node stop` stops it), SIGKILL to what is left after GRACE seconds; then it removes
  the run's temporary directory (the server's data directory is there).

The marking is mirakuru's (pytest-postgresql's executor: `mirakuru_uuid`), whose clean-up runs
only in a process that lives to run it. Linux only (/proc, pidfds); elsewhere nothing is done.
This file runs with `python -I -S` and imports nothing but the standard library."""

from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

MARK = "TROTH_TEST_RUN"
"""The environment variable whose value marks a run's processes."""
GRACE = 5.0
"""Seconds the run's leftovers are given to end on SIGTERM before SIGKILL."""
LOG = "TROTH_TEST_REAPER_LOG"
"""The environment variable naming a file the watcher appends what it ends to (optional)."""
_WATCHER: subprocess.Popen[bytes] | None = None


def start_reaper(scratch: str | None = None) -> None:
    """Mark this process's children as this run's and start the watcher that ends them once
    this process has ended, and then removes directory `scratch` (the run's temporary files:
    a killed run's teardown never removed them). Nothing where there are no /proc and
    pidfds."""
    if not (hasattr(os, "pidfd_open") and Path("/proc/self/environ").exists()):
        return
    mark = f"{os.getpid()}-{secrets.token_hex(8)}"
    os.environ[MARK] = mark
    environment = {key: value for key, value in os.environ.items() if key != MARK}
    global _WATCHER  # held: dropped, its Popen warned that the watcher still ran
    _WATCHER = subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            __file__,
            mark,
            str(os.getpid()),
            *([scratch] if scratch else []),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd="/",  # holds no directory of the run's
        env=environment,
    )


def _marked(pid: int, needle: bytes) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # ended, or not ours to read
        return False
    return needle in b"\0" + environ


def _parents() -> dict[int, int]:
    """Each process's parent (/proc/PID/stat, field 4: proc(5))."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            parents[int(entry)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return parents


def _leftovers(mark: str) -> dict[int, int]:
    """The processes carrying `mark`, and their descendants: a pidfd of each (opened before
    the mark is read, so a pid given meanwhile to another process is never signalled)."""
    needle = f"\0{MARK}={mark}\0".encode()
    parents = _parents()
    handles: dict[int, int] = {}
    for pid in parents:
        if pid == os.getpid():
            continue
        try:
            handle = os.pidfd_open(pid)
        except OSError:
            continue
        if _marked(pid, needle):
            handles[pid] = handle
        else:
            os.close(handle)
    grown = True
    while grown:  # the descendants of a marked process, whatever their environment
        grown = False
        for pid, parent in parents.items():
            if parent in handles and pid not in handles and pid != os.getpid():
                try:
                    handles[pid] = os.pidfd_open(pid)
                except OSError:
                    continue
                grown = True
    return handles


def _signal(handles: dict[int, int], sig: signal.Signals) -> None:
    for handle in handles.values():
        try:
            signal.pidfd_send_signal(handle, sig)
        except OSError:  # ended meanwhile
            continue


def _wait_ended(handles: dict[int, int], seconds: float) -> None:
    """Return once every process in `handles` has ended (a pidfd turns readable), or after
    `seconds`."""
    poller = select.poll()
    for handle in handles.values():
        poller.register(handle, select.POLLIN)
    left = set(handles.values())
    deadline = time.monotonic() + seconds
    while left and time.monotonic() < deadline:
        for handle, _ in poller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            poller.unregister(handle)
            left.discard(handle)


def _note(handles: dict[int, int]) -> None:
    """Append what is to be ended to the file $TROTH_TEST_REAPER_LOG names, if one is named
    (a test that leaves a process behind is found there)."""
    path = os.environ.get(LOG)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as log:
        for pid in handles:
            with suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                log.write(f"{pid} {command.decode(errors='replace').strip()[:200]}\n")


def reap(mark: str) -> None:
    """End every process carrying `mark` (and their descendants): SIGTERM, then SIGKILL
    after GRACE; again while a pass finds some (started by one ending)."""
    for _ in range(3):
        handles = _leftovers(mark)
        if not handles:
            return
        _note(handles)
        _signal(handles, signal.SIGTERM)
        _wait_ended(handles, GRACE)
        _signal(handles, signal.SIGKILL)
        _wait_ended(handles, GRACE)
        for handle in handles.values():
            os.close(handle)


def watch(mark: str, run: int, scratch: str | None) -> None:
    """Wait until process `run` (this watcher's parent) has ended, then `reap(mark)` and
    remove directory `scratch` (when given)."""
    try:
        handle = os.pidfd_open(run)
    except OSError:  # ended already
        handle = None
    if handle is not None and os.getppid() == run:  # `run` is still the process it was
        select.select([handle], [], [])
    reap(mark)
    if scratch is not None:  # after the reap: no process of the run writes there any more
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    watch(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
