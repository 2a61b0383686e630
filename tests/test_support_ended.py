"""`tests.support.processes.ended`, which tests that SIGKILL a node rely on before they look at
what it left (its lock, its pid file): a process whose main thread has ended while another of
its threads lives is not ended (lead, session 73: a fresh-clone CI run found the SIGKILLed
node's main thread a zombie while its other threads, still exiting, held node.lock, and
`troth node status` rightly said running; test_review49i_refuted read that as a failure)."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.support.processes import ended, until_ended

# the main thread ends by pthread_exit (a zombie, "Z") while a second thread holds the process
_LEADER_GONE = """\
import ctypes, sys, threading
threading.Thread(target=sys.stdin.read).start()
print("up", flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_whose_main_thread_ended_while_another_lives_has_not_ended() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _LEADER_GONE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "up\n"
        with open(f"/proc/{child.pid}/status") as status:  # its main thread gone (zombie)
            deadline = time.monotonic() + 10
            while "State:\tZ" not in status.read() and time.monotonic() < deadline:
                status.seek(0)
        assert not ended(child.pid)  # its second thread still reads stdin
    finally:
        assert child.stdin is not None
        child.stdin.close()  # the second thread's read ends, and with it the process
        until_ended(child.pid)
        assert child.wait(10) == 0
