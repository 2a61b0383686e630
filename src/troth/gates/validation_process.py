"""The Cedar validation child process run and waited for (troth.gates.policies's part:
`_validate_in_child` reads its verdict): started with only the part of the node's environment it
needs, its request on stdin and its output in temporary files, reaped with its resource usage,
killed at the wall-clock wait (docs/policy.md, "Nesting and size")."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Final

from troth import limits
from troth.child_path import child_environment

__all__ = [
    "CHILD_MALLOC",
    "CPU_LIMIT_REACHED",
    "CPU_LIMIT_SIGNALLED",
    "OWN_SIGNALS",
    "signal_name",
]

CPU_LIMIT_REACHED: Final = 0.9
"""The fraction of its CPU limit a validating child killed by SIGKILL has used when it is taken
as over that limit: the kernel kills at RLIMIT_CPU's hard limit (the child's usage is then at
least the limit). One killed with less (the kernel's out-of-memory killer, or from outside) is
refused naming that instead."""
CPU_LIMIT_SIGNALLED: Final = 0.5
"""The fraction of its CPU limit a validating child ended by SIGXCPU has used when it is taken as
at that limit. The kernel checks RLIMIT_CPU against its tick-sampled CPU time, which under
contention runs ahead of the time `os.wait4` reports: a child stopped at a soft limit of 1 s
reported 0.86 s on this project's loaded CI machine (review 56 lead, cedar 1). Only the
out-of-memory killer's SIGKILL needs `CPU_LIMIT_REACHED`'s margin; a SIGXCPU before half the
limit came from outside (review 55k, gates 1)."""
OWN_SIGNALS: Final = frozenset(
    {
        signal.SIGXCPU,
        signal.SIGKILL,
        signal.SIGABRT,
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGILL,
        signal.SIGFPE,
    }
)
"""The signals a validating child's own limits (RLIMIT_CPU: SIGXCPU, then SIGKILL; RLIMIT_AS:
Rust's SIGABRT) or a fault of its validation send it: its end by one is about the bundle (SIGKILL
only at its CPU limit: `CPU_LIMIT_REACHED`). Any other came from outside (`kill PID`: SIGTERM;
a closed terminal: SIGHUP), which says nothing about the bundle (review 55f, validation 1)."""


def signal_name(number: int) -> str:
    """`SIGTERM` for 15; `signal 34` for a number with no name here."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_STDERR_TAIL: Final = 1024
"""The bytes of the end of the child's stderr read (a failure's message quotes its last 200
characters)."""
_POLL_SECONDS: Final = 0.05
"""The longest pause between two looks at the running child (Popen.wait's own bound)."""


@dataclass(frozen=True, slots=True)
class _Ended:
    """How the validating child ended: its exit status (-N: killed by signal N), what it wrote
    on stdout (its first MAX_CEDAR_VALIDATION_OUTPUT bytes and one more: longer is too long)
    and the end of what it wrote on stderr (_STDERR_TAIL bytes), and the CPU time it used
    (user + system, seconds: `os.wait4`)."""

    code: int
    stdout: bytes
    stderr: bytes
    cpu: float


CHILD_MALLOC: Final = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824"
"""glibc's allocator settings in the validating child (GLIBC_TUNABLES, added to any the node
runs with): cedarpy's validator allocates and frees large blocks, which glibc by default maps
and unmaps each time (its mmap threshold follows the sizes freed), a page fault per page
touched again: on a virtual machine that took over half of the child's CPU time (7.1 s of which
4.2 s in the kernel for a policy at MAX_CEDAR_CHECKED_NODES, 2.6 s with these settings), so a
bundle within the cost model's bounds could meet MAX_CEDAR_VALIDATION_CPU_SECONDS. Blocks under
256 MiB come from the heap and up to 1 GiB freed stays mapped: within the child's address
space (MAX_CEDAR_VALIDATION_BYTES), and gone when it exits."""


# What the validation child keeps of the node's environment (review 48d: deny by default, so
# the vault key, a PKCS#11 PIN and whatever else the node was given do not reach it).
_CHILD_ENVIRONMENT: Final = frozenset(
    {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "GLIBC_TUNABLES", "LD_LIBRARY_PATH"}
)
_CHILD_ENVIRONMENT_PREFIXES: Final = ("PYTHON",)


def _child_environment() -> dict[str, str]:
    """The part of the node's environment the child needs (`_CHILD_ENVIRONMENT`, PYTHON*),
    with `CHILD_MALLOC` added to GLIBC_TUNABLES."""
    environment = child_environment(  # no empty PYTHONPATH entry (review 53q, import path 1)
        {
            name: value
            for name, value in os.environ.items()
            if name in _CHILD_ENVIRONMENT or name.startswith(_CHILD_ENVIRONMENT_PREFIXES)
        }
    )
    tunables = environment.get("GLIBC_TUNABLES")
    environment["GLIBC_TUNABLES"] = CHILD_MALLOC if not tunables else f"{tunables}:{CHILD_MALLOC}"
    return environment


def _run_child(command: list[str], request: bytes, wall: float) -> _Ended | None:
    """Run `command` with `request` on its stdin and its output in temporary files, reaped with
    `os.wait4` for its resource usage (subprocess.run reaps without it); None when it did not
    end within `wall` seconds (it is killed and reaped). OSError when it does not start."""
    with (
        tempfile.TemporaryFile() as stdin,
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
    ):
        stdin.write(request)
        stdin.seek(0)
        child = subprocess.Popen(  # noqa: S603
            command, stdin=stdin, stdout=stdout, stderr=stderr, env=_child_environment()
        )
        deadline, pause, pid = time.monotonic() + wall, 0.001, 0
        try:
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid or time.monotonic() >= deadline:
                    break
                time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
                pause = min(pause * 2, _POLL_SECONDS)
        except ChildProcessError:  # reaped by someone else: nothing of ours to kill
            pid = child.pid
            raise
        finally:
            if not pid:  # over the wait (or interrupted): not reaped, so its pid is still its own
                os.kill(child.pid, signal.SIGKILL)  # not Popen.kill: its poll() could reap it
                os.wait4(child.pid, 0)
            child.returncode = -signal.SIGKILL  # reaped here: Popen must not wait for it
        if not pid:
            return None
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - _STDERR_TAIL))
        cpu = usage.ru_utime + usage.ru_stime
        output = stdout.read(limits.MAX_CEDAR_VALIDATION_OUTPUT + 1)  # review 25, gates 2
        return _Ended(child.returncode, output, stderr.read(), cpu)
