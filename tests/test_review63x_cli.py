"""Review 63x, cli: review of 63q's fixes of the names of the command's own descriptors.

1. 63q cli 1 read an --out's (or a kept checkpoint's) directory in its real path, so that
   `d/stdout` for a link d to /dev names the descriptor — but from the name made normal as
   text first (`os.path.abspath`), which drops `X/..` before the system reads it. The system
   follows X first: for a link L to a directory inside /dev (`/dev/pts`, `/dev/shm`),
   `L/../stdout` is /dev/stdout, where its text, made normal, is `./stdout`, a plain file. So
   `--out L/../stdout` was written as a path: the atomic write replaced the link, as root the
   machine's /dev/stdout with a 0600 file (the guard below stops it first); `--out L/../stdin`
   was not refused as stdin; `--checkpoint L/../stdout` was reopened and read; an input named
   by a link to `L/../stdin` was not stdin to `stdin_once`. The directory is now resolved from
   the name as given (`..` after the links before it, as the system does), and a link's
   target is read from the link's own directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest

from tests.support.cli import run, run_json
from troth.cli import common
from troth.node import trace_checks


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard: the replacing write fails the test before it happens (unguarded, as root,
    it replaced the machine's /dev/stdout)."""

    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


def _up_from_dev(tmp_path: Path, stream: str) -> str:
    """`L/../STREAM` for a link L to a directory inside /dev: /dev/STREAM to the system."""
    (tmp_path / "L").symlink_to(_inside_dev())
    return f"{tmp_path}/L/../{stream}"


def _inside_dev() -> str:
    """A directory inside /dev (skipped on a machine with none)."""
    for inside in ("/dev/pts", "/dev/shm", "/dev/mqueue"):
        if os.path.isdir(inside) and not os.path.islink(inside):
            return inside
    pytest.skip("no directory inside /dev")


def test_cli1_an_out_up_from_a_link_into_dev_writes_through_the_descriptor(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    out = _up_from_dev(tmp_path, "stderr")
    result = run_json("identity", "export", "agent", "--out", out)
    assert result["file"] == out
    assert os.path.islink("/dev/stderr")


def test_cli1_an_out_up_from_a_link_into_dev_naming_stdin_is_refused(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    out = _up_from_dev(tmp_path, "stdin")
    error = run_json("identity", "export", "agent", "--out", out, code=2)
    assert "stdin" in error["message"], error


def test_cli1_the_kept_checkpoint_up_from_a_link_into_dev_is_refused(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)

    def read(path: Path) -> bytes:
        raise AssertionError(f"{path} read")

    monkeypatch.setattr(trace_checks, "read_kept", read)
    checkpoint = _up_from_dev(tmp_path, "stdout")
    error = run_json("trace", "verify", "--checkpoint", checkpoint, code=2)
    assert "descriptor" in error["message"], error


def test_cli1_an_input_linked_to_a_name_up_from_dev_is_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "L").symlink_to(_inside_dev())
    (tmp_path / "config").symlink_to("L/../stdin")  # relative: read from the link's directory
    assert common._reads_stdin("config")
    with pytest.raises(click.UsageError, match="both read stdin"):
        common.stdin_once(value="-", config="config")
