"""Review 36b, socket directory: the `troth-<uid>` directory a node's control socket falls
back to when its node directory's path is too long for AF_UNIX (docs/protocols.md)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import stat
from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node import init_node
from troth.node.daemon import node_status, serve, start_daemon, stop_daemon
from troth.node.node import node_dir

OTHER_UID = 65534  # nobody: another local user
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="planting as another user needs root")


def long_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A home whose node `n`'s control socket falls back to `<shared>/troth-<uid>` (shared
    stands for /tmp); the home and that directory."""
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    home = tmp_path / ("h" * 100)  # <home>/nodes/n/control.sock is over the AF_UNIX limit
    monkeypatch.setenv("TROTH_HOME", str(home))
    init_node("n", home=home)
    return home, shared / f"troth-{os.getuid()}"


@needs_root
def test_another_users_directory_is_refused_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Socket directory 1 (the control of review 34d, node home 3 for a directory rather than
    a link): another user creates `troth-<uid>` first, theirs, even 0700; the node refuses it
    (ConfigError naming it) and changes nothing in it."""
    home, runtime = long_home(tmp_path, monkeypatch)
    runtime.mkdir(0o700)
    os.chown(runtime, OTHER_UID, OTHER_UID)
    with pytest.raises(ConfigError, match="is not a private directory of this user") as refused:
        asyncio.run(serve(home, "n", None))
    assert str(runtime) in str(refused.value)
    info = runtime.lstat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (OTHER_UID, 0o700)
    assert list(runtime.iterdir()) == []


@needs_root
def test_a_loose_directory_holding_another_users_entry_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Socket directory 2: the node's own `troth-<uid>` with group/other permissions (made by
    hand, or by an older troth, 0777) was made private (chmod 0700) and used, whatever
    another user had put in it meanwhile: their entry at the socket's name (a directory of
    theirs) stayed, and the node failed to start with a bare "Is a directory" OSError that
    names no one. A loose directory is recovered only when nothing in it belongs to another
    user; else the node refuses with a ConfigError naming the directory and the entry. Was a
    strict xfail until `_socket_path` looked at a loose directory's entries after the chmod."""
    home, runtime = long_home(tmp_path, monkeypatch)
    runtime.mkdir()
    os.chmod(runtime, 0o777)  # noqa: S103 - the loose directory under test
    name = hashlib.sha256(str(node_dir(home, "n")).encode()).hexdigest()[:20] + ".sock"
    planted = runtime / name
    planted.mkdir()
    os.chown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(ConfigError) as refused:
        asyncio.run(serve(home, "n", None))
    reason = str(refused.value)
    assert f"{runtime} had group/other permissions" in reason
    assert f"{name} belongs to uid {OTHER_UID}" in reason
    assert planted.is_dir()  # nothing of theirs removed: the operator decides


def test_a_loose_directory_of_only_ours_is_made_private_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control of socket directory 2: our own loose `troth-<uid>` holding only our own
    entries (a crashed node's leftovers) is made 0700 and the node starts."""
    home, runtime = long_home(tmp_path, monkeypatch)
    runtime.mkdir()
    os.chmod(runtime, 0o777)  # noqa: S103 - the loose directory under test
    (runtime / "leftover.sock").write_bytes(b"")
    started = start_daemon(home, "n", None)
    try:
        assert node_status(home, "n")["running"]
        assert stat.S_IMODE(runtime.lstat().st_mode) == 0o700
    finally:
        stop_daemon(home, "n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(started["pid"], signal.SIGKILL)
