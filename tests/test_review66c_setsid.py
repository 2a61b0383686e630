"""Review 66c, mcp 3: an upstream that exits mid-call while a child it put in a session of its
own (`setsid`, a daemon) holds its stdout.

Review 65v ended the upstream's process group when it exits, so a child in the group cannot
hold the pipe; a child that left the group is out of the tree kill's reach (by design: it is
not ours to kill). But it still held the upstream's stdout, and the gate's reader waited for the
end of that pipe: the call under way waited for ever (recorded allowed only), as before 65v.
Now the upstream's exit ends its session once its group is ended: the reader stops at the end
of what was written, the call is answered with the gate's error and recorded unanswered, and
the child is left alone (it is not killed: it left the group). The same child started before
the handshake held it until START_TIMEOUT (30 s), then failed as an upstream that did not answer;
now the handshake fails at once (the connection closed).

Real MCP clients and servers (the SDK's); the upstream is a process over stdio.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import suppress
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.test_review65v_mcp import _ORPHANING, _alive, call_as_the_upstream_exits
from troth.gates import Outcome
from troth.integrations.mcp.gate import DENIED_PREFIX
from troth.integrations.mcp.upstream import upstream_stdio

_DAEMONIZING = _ORPHANING.replace('time.sleep(60)"])', 'time.sleep(60)"], start_new_session=True)')
assert _DAEMONIZING != _ORPHANING


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_upstream_exiting_mid_call_with_a_setsid_child_holding_stdout_fails_the_call(
    tmp_path: Path,
) -> None:
    pid = 0
    try:
        errors, outcomes, pid = call_as_the_upstream_exits(tmp_path, _DAEMONIZING, within=5)
        assert errors, "the call waited for a pipe a child outside the group held"
        assert errors[0].error.message.startswith(DENIED_PREFIX + "the upstream failed the call")
        assert outcomes == [Outcome.ALLOWED, Outcome.UNANSWERED]
        assert _alive(pid)  # not ours to kill: it left the group
    finally:
        if pid:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


_AT_THE_HANDSHAKE = """
import subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
)
with open(sys.argv[1], "w") as pid:
    pid.write(str(child.pid))
sys.exit(0)  # before the handshake: the child holds stdout
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_upstream_exiting_at_the_handshake_with_a_setsid_child_fails_at_once(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "child.pid"
    upstream = StdioServerParameters(
        command=sys.executable, args=["-c", _AT_THE_HANDSHAKE, str(pid_file)]
    )
    failed: list[BaseException] = []

    async def main() -> None:
        with anyio.move_on_after(5):  # (START_TIMEOUT, 30 s, bounded `troth mcp gate`'s wait)
            try:
                async with Client(upstream_stdio(upstream), cache=None):
                    pass
            except Exception as exc:
                failed.append(exc)

    try:
        anyio.run(main)
        assert failed, "the handshake waited for a pipe a child outside the group held"
    finally:
        if pid_file.exists():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
