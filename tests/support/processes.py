"""Running what may kill its process (a native stack overflow in cedarpy) in a child process;
waiting for a process to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def survives(program: str, *args: str, timeout: float = 300) -> str:
    """Run Python `program` (with `args`) in a child process; its standard output. Fails the
    test when the child did not exit 0 (a SIGSEGV shows as -11)."""
    child = subprocess.run(
        [sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=timeout
    )
    if child.returncode != 0:
        raise AssertionError(
            f"the child exited {child.returncode}: {child.stdout[-200:]} {child.stderr[-500:]}"
        )
    return child.stdout


_CEDAR_HEAD = """\
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1024 * 2**20, 1024 * 2**20))
from troth.errors import PolicyError
from troth.gates import compile_policies
"""

_CEDAR_TAIL = """\
try:
    compile_policies(policies, fragment, {})
    print("compiled")
except PolicyError as exc:
    print("refused", exc.reason.value)
    print(exc, file=sys.stderr)
"""


def cedar_child(body: str) -> str:
    """A child program for `survives`: `body` (which sets `fragment` and `policies`, reading
    sys.argv) between an address-space limit of 1 GiB and the compile, whose outcome it prints:
    "compiled", or "refused" and the refusal's reason (its message on stderr)."""
    return _CEDAR_HEAD + body + _CEDAR_TAIL


def ended(pid: int) -> bool:
    """Whether process `pid` has ended: gone, or a zombie (nothing of it left but its exit
    status: no descriptor, no lock, no socket) with no other thread left. A daemon's parent is
    init, which may reap it late (1.5 s in the CI's container: a wait for `pid` to be gone
    waited that out, 72f ci). Its main thread is a zombie as soon as it ended, while the
    process's other threads, killed too, may still be exiting, its descriptors and locks with
    them (lead, session 73: `troth node status` rightly saw node.lock held then)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X") and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except FileNotFoundError:
        return True


def until_ended(pid: int, within: float = 10.0) -> None:
    """Return once process `pid` has ended (`ended`); AssertionError after `within` s."""
    deadline = time.monotonic() + within
    while not ended(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not end within {within:g} s")
        time.sleep(0.02)
