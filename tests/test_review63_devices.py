"""Review 63 (lead), cli: nothing in /dev is replaced by a file, however its name is spelt.

Four reviews this session (63e, 63q, 63x, 63u2) each found another spelling of /dev/stdout or
/dev/stdin (`/dev/stdin`, a link to /dev, a bind-mounted /dev, `/proc/thread-self/fd/N`,
`L/../stdout`, `L/../stderr/`) that `_descriptor` did not know, and the atomic write replaced,
as root, the machine's /dev/stdout by a file. The writer now refuses (exit 2) to replace any
name whose directory, resolved as the replace resolves it, is /dev: a spelling no one has
found yet is refused too. The guard below fails a test before a replacing write happens.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run, run_json
from tests.test_review63x_cli import _inside_dev, _never_replaced
from troth.cli import common


def test_a_descriptor_spelt_in_a_way_not_known_is_not_replaced(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/dev/stdout as a spelling `_descriptor` does not know (simulated: it knows none): refused,
    exit 2, nothing replaced."""
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    monkeypatch.setattr(common, "_descriptor", lambda path: None)
    error = run_json("identity", "export", "agent", "--out", "/dev/stdout", code=2)
    assert "/dev" in error["message"]
    assert os.path.islink("/dev/stdout") or not os.path.isfile("/dev/stdout")


def test_a_new_name_in_dev_up_from_a_link_is_refused(
    tmp_path: Path, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`L/../troth-63-out` for a link L to a directory inside /dev is /dev/troth-63-out to the
    system: refused, and no file is made there."""
    (tmp_path / "L").symlink_to(_inside_dev())
    out = f"{tmp_path}/L/../troth-63-out"
    run("identity", "create", "agent")
    _never_replaced(monkeypatch)
    run_json("identity", "export", "agent", "--out", out, code=2)
    assert not os.path.exists("/dev/troth-63-out")


def test_a_file_beside_dev_is_written(tmp_path: Path, troth_home: Path) -> None:
    """A directory named `dev` elsewhere is no /dev: written as any file."""
    (tmp_path / "dev").mkdir()
    out = tmp_path / "dev" / "stdout"
    run("identity", "create", "agent")
    run_json("identity", "export", "agent", "--out", str(out))
    assert out.is_file()
    assert out.stat().st_size > 0
