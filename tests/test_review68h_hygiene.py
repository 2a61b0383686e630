"""Review 68h of test hygiene: what a test run starts must not outlive the run.

1. A killed test run left its long-running children running: a test that started a node
   daemon (`start_daemon`, as ~40 tests do: a session of its own, made to outlive the command
   that started it) and whose pytest was killed (SIGKILL, a CI timeout) before its `finally`
   ran left the daemon running for ever (two left by a killed run skewed a benchmark), and so
   with the session's PostgreSQL server (pg_ctl's daemon: the fixture's teardown never ran).
   Now tests/conftest.py starts tests/support/reaper.py with every run: it marks the run's
   children ($TROTH_TEST_RUN) and ends every marked process once the run has ended, however
   it ended; then it removes the run's temporary directory (a killed run left it, with the
   server's data directory, in /tmp).

The test runs a scenario (tests/support/orphans.py) in a pytest of its own, with this
project's conftest: a node daemon started as the tests start one and, where PostgreSQL is
installed, the session's server; it kills that pytest with SIGKILL once they are up, and waits
(a generous bound, no timing asserted) for them to end and the run's temporary directory to
go. A second test holds the reaper to its bounds: it ends a marked process's descendants
whatever their environment, and no process of another run or of none.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest

from tests.support.orphans import REPORT, WITH_POSTGRES
from tests.support.postgres import factories, pg_ctl_path
from tests.support.reaper import MARK, reap

ROOT = Path(__file__).parents[1]
BOUND = 60.0
"""Seconds within which the scenario's process must be up, and then gone (generous)."""

pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and hasattr(os, "pidfd_open")), reason="Linux pidfds"
)


def _ended(handle: int, seconds: float) -> bool:
    """Whether the process of pidfd `handle` ends within `seconds`."""
    return bool(select.select([handle], [], [], seconds)[0])


def _with_postgres() -> bool:
    """Whether the scenario also starts PostgreSQL (installed, or required: the scenario then
    fails, as the tests needing it do)."""
    return os.environ.get("TROTH_REQUIRE_PG") == "1" or (
        factories is not None and pg_ctl_path() is not None
    )


def _left_behind(tmp_path: Path, postgres: bool) -> list[str]:
    """Run the scenario (tests/support/orphans.py) in a pytest of its own and SIGKILL that
    pytest once the scenario's processes are up: those left running BOUND seconds later, and
    the run's temporary directory if it is left then (all removed then)."""
    report = tmp_path / "pids.json"
    output = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(  # a test run as any other: this project's conftest
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-q",
            "-o",
            "python_functions=scenario_*",
            "tests/support/orphans.py::scenario_started",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            REPORT: str(report),
            WITH_POSTGRES: "1" if postgres else "0",
        },
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    handles: dict[str, int] = {}
    scratch = None
    try:
        deadline = time.monotonic() + BOUND
        while not report.exists():
            assert run.poll() is None, (  # (its output says why: CI's fresh1 failed here once)
                "the scenario's run ended before its processes were up: "
                + (tmp_path / "run.log").read_text(errors="replace")[-3000:]
            )
            assert time.monotonic() < deadline, "the scenario's processes were not up in time"
            time.sleep(0.05)
        reported = json.loads(report.read_text())
        scratch = Path(reported["scratch"])
        for name, pid in reported["pids"].items():
            handles[name] = os.pidfd_open(pid)  # up, held by the run: not a reused pid
        run.kill()
        run.wait()
        deadline = time.monotonic() + BOUND
        left = [
            name
            for name, handle in handles.items()
            if not _ended(handle, max(0.0, deadline - time.monotonic()))
        ]
        while scratch.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return left + ([str(scratch)] if scratch.exists() else [])
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        output.close()
        for handle in handles.values():
            with suppress(OSError):  # this test's own clean-up, where the run's failed
                signal.pidfd_send_signal(handle, signal.SIGKILL)
            os.close(handle)
        if scratch is not None and scratch.name.startswith("tp-"):  # the run's mkdtemp
            shutil.rmtree(scratch, ignore_errors=True)


def test_what_a_killed_test_run_started_dies_with_it(tmp_path: Path) -> None:
    postgres = _with_postgres()
    assert _left_behind(tmp_path, postgres) == []


def test_the_reaper_ends_the_marked_and_their_descendants_and_spares_the_rest() -> None:
    """What `reap` ends: a process carrying the run's mark, and its child started with an
    empty environment (a descendant, whatever its environment); a process carrying another
    run's mark, and one carrying none, run on (another helper's run, the machine's)."""
    mark = f"test-{os.getpid()}-{time.monotonic_ns()}"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    parent_code = (
        "import subprocess, sys, time; "
        f"subprocess.Popen(['env', '-i', *{sleeper!r}]); time.sleep(60)"
    )
    unmarked = {k: v for k, v in os.environ.items() if k != MARK}
    marked = subprocess.Popen([sys.executable, "-c", parent_code], env={**unmarked, MARK: mark})
    other = subprocess.Popen(sleeper, env={**unmarked, MARK: mark + "0"})
    bystander = subprocess.Popen(sleeper, env=unmarked)
    try:
        deadline = time.monotonic() + BOUND
        while not (children := _children(marked.pid)) or not _sleeping(children[0]):
            assert time.monotonic() < deadline, "the marked process's child did not start"
            time.sleep(0.02)
        child = os.pidfd_open(children[0])  # its environment empty: a descendant alone
        try:
            reap(mark)
            assert marked.wait(BOUND) == -signal.SIGTERM
            assert _ended(child, BOUND)
        finally:
            with suppress(OSError):
                signal.pidfd_send_signal(child, signal.SIGKILL)
            os.close(child)
        assert other.poll() is None
        assert bystander.poll() is None
    finally:
        for process in (marked, other, bystander):
            process.kill()
            process.wait()


def _sleeping(pid: int) -> bool:
    """Whether process `pid` runs the sleeper (`env` has replaced itself with it)."""
    try:
        return b"time.sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """The children of process `pid` (proc(5): /proc/PID/task/TID/children)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
