"""Review 63w2, cli: review of the lead's `_outside_devices` (review 63 cli).

1. The --out writer refused a name whose directory is /dev itself, but /dev's own filesystem
   (devtmpfs) has directories of its own: `/dev/net`, `/dev/cpu`, and on a host with udev
   `/dev/disk/by-uuid`, `/dev/char`, `/dev/block`, whose entries are links to devices. As root,
   `--out /dev/char/1:3` (or `/dev/disk/by-uuid/X`, the name fstab and systemd mount by)
   replaced that link by a 0600 file, and `--out /dev/net/x` created one in /dev: the docs'
   "nothing in /dev is ever replaced by a file" did not hold one level down. A name whose
   directory lies on the filesystem mounted at /dev is now refused too, exit 2; /dev/shm (its
   own tmpfs, where files belong) is still written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from troth.cli import common


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard: the replacing write fails the test before it happens."""

    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


def _dev_subdirectory() -> str:
    """A directory inside /dev on /dev's own filesystem (skipped on a machine with none)."""
    if os.stat("/dev").st_dev == os.stat("/").st_dev:
        pytest.skip("/dev is not a filesystem of its own here")
    for entry in sorted(os.scandir("/dev"), key=lambda e: e.name):
        on_dev = entry.is_dir(follow_symlinks=False) and entry.name != "shm"
        if on_dev and os.stat(entry.path).st_dev == os.stat("/dev").st_dev:
            return entry.path
    pytest.skip("no directory on /dev's filesystem")


def test_cli1_a_name_in_a_directory_of_dev_is_refused(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    out = f"{_dev_subdirectory()}/troth-63w2-never-written"
    error = run_json("identity", "export", "agent", "--out", out, code=2)
    assert "/dev" in error["message"], error
    assert not os.path.lexists(out)


def test_cli1_a_link_to_a_directory_of_dev_is_refused(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    (tmp_path / "L").symlink_to(_dev_subdirectory())
    out = f"{tmp_path}/L/troth-63w2-never-written"
    run_json("identity", "export", "agent", "--out", out, code=2)
