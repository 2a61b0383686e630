"""Review 57p: review 57k's `troth.node.home._check_links` (cli 1 and 3), attacked.

Home 1: `_check_links` walked the lexically normalised path (`os.path.abspath`), which drops
each `name/..` pair, while the kernel resolves `..` after a link in the link's target. So a
home named with a `..` after another user's link (TROTH_HOME=/srv/shared/proj/../troth, proj a
link planted by another user) passed the check, and `secure_dir` made the directory where the
link's owner chose (the parent of its target: as root, /etc/troth) 0700 and kept the nodes
there. The walk now resolves the path as the kernel does, looking at every link it follows."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from troth.errors import ConfigError
from troth.node import init_node
from troth.node.home import check_kept_dirs, secure_dir

_OTHER = 65534
"""Another user (nobody)."""

_ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user: lchown")


def _planted(tmp_path: Path) -> tuple[Path, Path]:
    """Another user's link `tmp_path/shared/proj` to `tmp_path/etc/sub` (`etc` this user's, as
    /etc is root's): the link and the directory its `..` names."""
    etc = tmp_path / "etc"
    (etc / "sub").mkdir(parents=True)
    etc.chmod(0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    link = shared / "proj"
    link.symlink_to(etc / "sub")
    os.lchown(link, _OTHER, _OTHER)
    return link, etc


@_ROOT_ONLY
def test_a_dotdot_after_another_users_link_is_refused(tmp_path: Path) -> None:
    link, etc = _planted(tmp_path)
    home = Path(f"{link}/../troth")  # the kernel: etc/troth
    with pytest.raises(ConfigError, match="is a link of uid"):
        secure_dir(home)
    assert not (etc / "troth").exists()


@_ROOT_ONLY
def test_init_node_with_a_dotdot_after_another_users_link_is_refused(tmp_path: Path) -> None:
    link, etc = _planted(tmp_path)
    with pytest.raises(ConfigError, match="is a link of uid"):
        init_node("n", home=Path(f"{link}/../troth"))
    assert not (etc / "troth").exists()


@_ROOT_ONLY
def test_check_kept_dirs_with_a_dotdot_after_another_users_link_is_refused(
    tmp_path: Path,
) -> None:
    link, etc = _planted(tmp_path)
    (etc / "kept").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="is a link of uid"):
        check_kept_dirs(Path(f"{link}/../kept"))


def test_legitimate_homes_through_links_and_dotdot_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No false refusal: a relative home, a `..` through a link of this user's (relative and
    absolute targets, a chain of two), the home itself such a link; a link loop is the
    kernel's error (ConfigError), not a hang."""
    disk = tmp_path / "private" / "var"
    (disk / "sub").mkdir(parents=True)
    (tmp_path / "var").symlink_to("private/var")  # as /var -> /private/var (macOS)
    (tmp_path / "again").symlink_to(tmp_path / "var" / "sub")
    monkeypatch.chdir(tmp_path)
    assert secure_dir(Path("again/../h1")).resolve() == (disk / "h1").resolve()
    assert secure_dir(Path("var/sub/../h2")).resolve() == (disk / "h2").resolve()
    (tmp_path / "home").symlink_to(disk / "h2")
    assert secure_dir(tmp_path / "home") == tmp_path / "home"
    check_kept_dirs(Path("again/../h1"), tmp_path / "home")
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(ConfigError):
        secure_dir(tmp_path / "loop" / "h")


@_ROOT_ONLY
def test_a_directory_of_another_user_on_the_way_swapped_for_a_link_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home 2: `secure_dir` opened the home with O_NOFOLLOW on its last part only. Root
    using a home under another user's directory (TROTH_HOME=/home/alice/proj/ssh) is not
    refused; alice, who may rename `proj`, swaps it for a link (here: as the home is opened,
    after `_check_links` looked, as a race would), and the directory of root's the link led to
    (as /etc/ssh) was made 0700. `_open_dir` now reaches it one part at a time. Was a strict
    xfail until then."""
    alice = tmp_path / "alice"
    (alice / "proj").mkdir(parents=True)
    for mine in (alice, alice / "proj"):
        os.chown(mine, _OTHER, _OTHER)
    (tmp_path / "etc" / "ssh").mkdir(parents=True, mode=0o755)
    home = alice / "proj" / "ssh"
    opening = os.open

    def swapping(*args: Any, **kwargs: Any) -> int:
        if not (alice / "proj").is_symlink():  # as the directory is opened
            (alice / "proj").rename(alice / "old")
            (alice / "proj").symlink_to(tmp_path / "etc")
            os.lchown(alice / "proj", _OTHER, _OTHER)
        return opening(*args, **kwargs)

    monkeypatch.setattr(os, "open", swapping)
    with pytest.raises(ConfigError):
        secure_dir(home)
    assert (tmp_path / "etc" / "ssh").stat().st_mode & 0o777 == 0o755


def _as_other_user(action: Callable[[], object]) -> str:
    """`action` run in a child process as `_OTHER` (effective ids): '' or its error's text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing returns from here
        os.close(read)
        text = ""
        try:
            os.setegid(_OTHER)
            os.seteuid(_OTHER)
            action()
        except BaseException as exc:
            text = f"{type(exc).__name__}: {exc}"
        os.write(write, text.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        text = answer.read().decode()
    os.waitpid(pid, 0)
    return text


@_ROOT_ONLY
def test_a_home_under_a_directory_others_may_only_search_is_used() -> None:
    """Home 3: no false refusal of a home under a directory others may search but not list
    (0711, as many a shared /srv or home directory): stat, mkdir and the kernel's resolution
    need search permission only."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o711)
        (base / "srv").mkdir(mode=0o711)
        home = base / "srv" / "home"
        home.mkdir(mode=0o700)
        os.chown(home, _OTHER, _OTHER)
        assert _as_other_user(lambda: secure_dir(home)) == ""
        assert _as_other_user(lambda: check_kept_dirs(home)) == ""
    finally:
        shutil.rmtree(base)
