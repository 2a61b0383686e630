"""Review 63e, cli: the files the command line writes, named as stdin.

1. An --out, and `troth trace verify --checkpoint` (the kept checkpoint: read, then replaced),
   refuse `-` (review 44c, CLI 2 and 4: stdin cannot be written or replaced), but took
   stdin's other names as files: `--checkpoint /dev/stdin < kept` read the checkpoint from
   stdin and then wrote the newest over the name, atomically, so the link /dev/stdin itself
   was replaced by a regular file (0600) holding the note (as root, the machine's /dev/stdin
   for every process after, as review 61q, cli 2 found for /dev/stdout: seen here in a private
   mount namespace); `--out /dev/stdin` did the same with an export, and `/dev/fd/0` or
   `/proc/self/fd/0` wrote into stdin's descriptor (exit 4 after the work, or the output on a
   terminal). Every name of stdin (`-`, /dev/stdin, /dev/fd/0, /proc/self/fd/0, a link to
   one: `troth.cli.common._reads_stdin`) is now refused as `-` is, a usage error (exit 2),
   before anything is read or written.
2. `troth trace verify --checkpoint /dev/stdout` (or /dev/stderr, /dev/fd/N: one of the
   process's descriptors, which an --out writes through: review 34d, CLI files 2) read the
   kept checkpoint by reopening the descriptor's file and then wrote the newest through it:
   with stdout a pipe the read waited on the pipe's other end, the command's own reader, for
   good (the command hung: a verifier's cron job never ended); on a file, the note of the
   command's own output was judged ("checkpoint invalid", exit 1). A kept checkpoint is a file
   read and then replaced: a descriptor's name is now refused, a usage error (exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from troth.cli import common


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard: the replacing write fails the test before it happens (unguarded, as root,
    it replaced the machine's /dev/stdin)."""

    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


STDIN_NAMES = ["/dev/stdin", "//dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "LINK"]


def _name(name: str, tmp_path: Path) -> str:
    if name == "LINK":  # a link to stdin, in a directory of the user's
        link = tmp_path / "kept.checkpoint"
        link.symlink_to("/dev/stdin")
        return str(link)
    return name


@pytest.mark.parametrize("name", STDIN_NAMES)
def test_an_out_naming_stdin_is_refused_as_dash_is(
    name: str, tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    out = _name(name, tmp_path)
    error = run_json("identity", "export", "agent", "--out", out, code=2)
    assert "stdin" in error["message"], error
    assert name != "LINK" or os.path.islink(out)  # the link kept, not replaced


@pytest.mark.parametrize("name", STDIN_NAMES)
def test_the_kept_checkpoint_naming_stdin_is_refused_as_dash_is(
    name: str, tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    kept = _name(name, tmp_path)
    error = run_json("trace", "verify", "--checkpoint", kept, code=2)
    assert "stdin" in error["message"], error
    assert name != "LINK" or os.path.islink(kept)


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/2"])
def test_the_kept_checkpoint_naming_a_descriptor_is_refused(
    name: str, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    error = run_json("trace", "verify", "--checkpoint", name, code=2)
    assert "descriptor" in error["message"], error
