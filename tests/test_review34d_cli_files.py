"""Review 34d, CLI files: where a command's `--out` goes (`troth.cli.common.output_file`)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run

NOBODY = 65534


@pytest.mark.skipif(os.geteuid() != 0, reason="making another user's FIFO needs root")
def test_out_never_writes_into_another_users_fifo(tmp_path: Path) -> None:
    """Review 34d, CLI files 1. Another local user plants a FIFO (anyone may make one) at the
    name a command is about to write in a shared directory (`troth trace export --out
    /tmp/traces.jsonl`: the tool calls' arguments and results) and reads from it. `--out`
    wrote any special file in place: the output went into the other user's pipe, where a
    regular file would have been the user's own, mode 0600. Now a FIFO or socket `--out` is
    written in place only when it is the user's own; another user's is refused (exit 4) and
    nothing is written.

    Was a strict xfail until `output_file` refused special files of other users (devices,
    which only root can make, are still written in place)."""
    run("identity", "create", "someone")
    shared = tmp_path / "shared"  # stands for /tmp
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103 - a shared directory, as /tmp is
    fifo = shared / "history.cbor"
    os.mkfifo(fifo, 0o666)
    os.chown(fifo, NOBODY, NOBODY)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the other user, reading
    try:
        result = run("identity", "export", "someone", "--out", str(fifo), code=4)
        assert "another user" in result.stderr
        try:
            leaked = os.read(reader, 1 << 16)  # b"": no writer ever wrote
        except BlockingIOError:  # a writer still holds it open, without writing
            leaked = b""
        assert leaked == b""
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_out_to_this_process_descriptor_writes_to_it(troth_home: Path) -> None:
    """Review 34d, CLI files 2. `--out /dev/stdout` (or `/dev/fd/N`) is written in place, as
    `output_file` says: these are symlinks (to /proc/self/fd/N), and a symlink at `--out` was
    replaced by a new file instead — the temporary file made beside it, in /dev. Run by a
    user, `--out /dev/fd/1` (and `/dev/stdout`) failed ("cannot write"); run by root (a
    container's default), `--out /dev/stdout` replaced the system's /dev/stdout with a
    regular file holding the output, which never reached stdout. Now the names of this
    process's descriptors are written in place, like a device.

    Was a strict xfail until `output_file` wrote /dev/stdout, /dev/stderr and /dev/fd/N in
    place. (`/dev/fd/1` is what runs here: as root, the test must not replace /dev/stdout.)"""
    run("identity", "create", "someone")
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "troth.cli.main",
            "identity",
            "export",
            "someone",
            "--out",
            "/dev/fd/1",
        ],
        capture_output=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout  # the history, on stdout
    assert os.path.islink("/dev/fd")
