"""Review 63w2: attacks on the newest fixes (review 63 cli's `_outside_devices`) that did not
work, each kept as a test that fails if the defence it names breaks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from troth.cli import common


def _never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    def replaced(target: Path, **_: object) -> None:
        raise AssertionError(f"{target} replaced by a file")

    monkeypatch.setattr(common, "private_file_writer", replaced)


@pytest.mark.parametrize("suffix", ["/", "/.", "//", "/./"])
def test_a_link_to_dev_with_a_trailing_slash_never_replaces(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """`L/x/`, `L/x/.`, `L/x//` for a link L to /dev: Path drops the trailing part, so the check
    and the writer agree on the directory (/dev): refused, never replaced."""
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    (tmp_path / "L").symlink_to("/dev")
    out = f"{tmp_path}/L/troth-63w2-absent{suffix}"
    run("identity", "export", "agent", "--out", out, code=2)
    assert not os.path.lexists("/dev/troth-63w2-absent")


def test_dev_shm_is_still_written(troth_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/dev/shm is its own tmpfs: a relative --out run from there is no false refusal."""
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat("/dev").st_dev:
        pytest.skip("no /dev/shm of its own")
    run("identity", "create", "agent")
    shm = Path("/dev/shm") / f"troth-63w2-{os.getpid()}"
    shm.mkdir()
    try:
        monkeypatch.chdir(shm)
        result = run_json("identity", "export", "agent", "--out", "x")
        assert result["file"] == "x"
        assert (shm / "x").is_file()
    finally:
        for entry in shm.iterdir():
            entry.unlink()
        shm.rmdir()


def test_a_link_to_proc_self_fd_cannot_be_replaced(tmp_path: Path, troth_home: Path) -> None:
    """`L/99` for a link L to /proc/self/fd (no descriptor 99): procfs takes no new file, so
    the write fails (exit 4) and nothing is replaced."""
    run("identity", "create", "agent")
    (tmp_path / "L").symlink_to("/proc/self/fd")
    error = run_json("identity", "export", "agent", "--out", f"{tmp_path}/L/99", code=4)
    assert "cannot write" in error["message"], error
