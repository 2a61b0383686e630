"""Running the CLI in a process forked from the test's: `troth_process`'s contract (a process of
its own, killed at a crash point, its exit code, stdout and stderr), without an interpreter's
start and troth's imports, which were most of each run's time (review 71n, CI time).

The child is a separate process as a spawned one is: its own memory, its own file descriptors
(the product's `os.register_at_fork` handlers run in it), ended by `os._exit` (a crash point's
exit 137 as in a spawned process). It runs `troth.cli.main.main` as the console script does,
with stdin, stdout and stderr on files of its own, Python's logging as a fresh interpreter has
it (no handler on the root: the last resort writes warnings to stderr), and the crash point
armed from its environment as `troth.faults` arms it at import. `ForkedCall` runs any callable
so (a worker module's main), as `subprocess.Popen` runs the module.

What the child does share with the test's process is its memory as of the fork: a test that
patched troth in memory (monkeypatch.setattr) patches the child too, where a spawned process
would run unpatched; none of the callers patches troth so."""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from typing import IO, NoReturn

from tests.support.cli import checked_run
from troth import faults
from troth.cli.main import main
from troth.faults import CRASH_ENV

TIMEOUT = 90.0
"""Seconds a forked run may take (troth_process's subprocess timeout)."""


def _child(
    args: tuple[str, ...],
    crash: str | None,
    env: Mapping[str, str | None],
    files: tuple[int, int, int],
) -> None:
    """In the forked process: run `troth *args` and exit with its code. Never returns."""

    def run() -> None:
        for fd, target in zip(files, (0, 1, 2), strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.pop(CRASH_ENV, None)
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if crash is not None:
            os.environ[CRASH_ENV] = crash
        vars(faults)["_ARMED"] = crash  # (read once, at import: as a fresh process reads it)
        _fresh_logging()
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - ended by _exit
        _fresh_output()
        sys.argv = ["troth", *args]
        main()

    _exit_with(run, failed=70)


def _fresh_logging() -> None:
    """Python's logging as a fresh interpreter has it (the test's capture handlers gone)."""
    logging.root.handlers.clear()
    logging.root.setLevel(logging.WARNING)


def _fresh_output() -> None:
    """sys.stdout and sys.stderr on file descriptors 1 and 2 (set up by the caller)."""
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 - ended by _exit
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115


def _exit_with(run: Callable[[], object], *, failed: int = 1) -> NoReturn:
    """Run `run` in a forked child and end the child as an interpreter ends: with SystemExit's
    code (a message written to stderr, exit 1), 0 when it returns, else `failed` with the
    traceback on stderr; stdout and stderr flushed, then `os._exit`."""
    code = failed
    try:
        try:
            run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if isinstance(exc.code, str):
                sys.stderr.write(exc.code + "\n")
    except BaseException:  # shown as the child's stderr, as an interpreter would
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _wait(pid: int, timeout: float = TIMEOUT, kill: bool = True) -> int:
    """The exit code of child `pid` (-N when killed by signal N), waited for on its pidfd;
    after `timeout` s subprocess.TimeoutExpired, the child killed first if `kill` (else left
    running, as Popen.wait leaves it)."""
    pidfd = os.pidfd_open(pid)
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            if kill:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            raise subprocess.TimeoutExpired("troth (forked)", timeout)
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _read(file: IO[bytes]) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


class Forked:
    """A CLI run forked by `start_forked`: `finish` waits for it."""

    def __init__(
        self,
        args: tuple[str, ...],
        crash: str | None,
        env: Mapping[str, str | None],
        input_text: str | None,
    ) -> None:
        self.args = args
        self.files = [tempfile.TemporaryFile() for _ in range(3)]  # noqa: SIM115 - in, out, err: closed by finish
        self.files[0].write((input_text or "").encode())
        self.files[0].flush()
        self.files[0].seek(0)
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child, ended by os._exit
            dup = [os.dup(file.fileno()) for file in self.files]
            _child(args, crash, env, (dup[0], dup[1], dup[2]))

    def finish(self) -> subprocess.CompletedProcess[str]:
        """Its exit code (-N: killed by signal N), stdout and stderr, once it ended."""
        try:
            returncode = _wait(self.pid)
            out, err = (_read(file) for file in self.files[1:])
        finally:
            for file in self.files:
                file.close()
        return subprocess.CompletedProcess(["troth", *self.args], returncode, out, err)


def start_forked(
    *args: str,
    crash: str | None = None,
    env: Mapping[str, str | None] | None = None,
    input_text: str | None = None,
) -> Forked:
    """`troth *args` started in a forked process (see the module's docstring): `input_text`
    its stdin, `env` set in its environment (None: unset), killed at crash point `crash`."""
    return Forked(args, crash, env or {}, input_text)


def troth_forked(
    *args: str,
    crash: str | None = None,
    code: int | None = None,
    input_text: str | None = None,
    check: bool = True,
    env: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`tests.support.cli.troth_process`, in a forked process (see the module's docstring),
    `env` set in its environment (None: unset)."""
    result = start_forked(*args, crash=crash, env=env, input_text=input_text).finish()
    return checked_run(result, args, crash, code) if check else result


class ForkedCall:
    """`target(*args)` in a forked process, as `subprocess.Popen` runs a module with
    stdout and stderr piped (text): the parts of its interface the crash tests use. The child
    exits 0 when `target` returns, with SystemExit's code, 1 on an exception (its traceback on
    stderr), -9 when killed: never running the test's own exit handlers."""

    def __init__(self, target: Callable[..., object], *args: object, quiet: bool = False) -> None:
        """`quiet`: its stderr to /dev/null (stderr=subprocess.DEVNULL), `self.stderr` empty."""
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        if quiet:
            os.close(err_write)
            err_write = os.open(os.devnull, os.O_WRONLY)
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child, ended by os._exit
            _call_in_child(target, args, (out_read, out_write, err_read, err_write))
        os.close(out_write)
        os.close(err_write)
        self.stdout = open(out_read, encoding="utf-8")  # noqa: SIM115 - closed by communicate
        self.stderr = open(err_read, encoding="utf-8")  # noqa: SIM115
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = _wait(self.pid, TIMEOUT if timeout is None else timeout, kill=False)
        return self.returncode

    def poll(self) -> int | None:
        """Its exit code if it ended, else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Its stdout and stderr once it ended (within `timeout` s)."""
        self.wait(timeout)
        try:
            return self.stdout.read(), self.stderr.read()
        finally:
            self.stdout.close()
            self.stderr.close()


def _call_in_child(
    target: Callable[..., object], args: tuple[object, ...], pipes: tuple[int, int, int, int]
) -> None:
    """In a ForkedCall's child: its pipes as stdout and stderr, `target(*args)`, exit."""
    out_read, out_write, err_read, err_write = pipes

    def run() -> None:
        os.close(out_read)
        os.close(err_read)
        os.dup2(out_write, 1)
        os.dup2(err_write, 2)
        os.close(out_write)
        os.close(err_write)
        os.environ.pop(CRASH_ENV, None)  # (no crash point armed: as troth_process clears it)
        vars(faults)["_ARMED"] = None
        _fresh_logging()
        _fresh_output()
        target(*args)

    _exit_with(run)
