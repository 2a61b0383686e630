"""Review 57t: review 57p's path walk in `troth.node.home` (`secure_dir`), attacked.

Home 1: `_check_links` and `_open_dir` joined every path, an absolute one too, to
`os.getcwd()`, which fails when the working directory was removed (a shell left in a deleted
directory, a service whose working directory went): `secure_dir` of an absolute home then
raised a bare FileNotFoundError (no ConfigError), and `check_kept_dirs` refused an absolute
home it could reach ("cannot look at"). The working directory is now asked for a relative path
only.

Home 2: `secure_dir` still made the missing parts of the path with `Path.mkdir(parents=True)`,
which follows links by name: a link another user planted on the way between `_check_links`
and the mkdir had the directory made where that user chose (as root: in /etc), refused only
afterwards by `_open_dir`. The missing parts are now made during the walk, each in the
directory opened before it (`mkdir` at a directory descriptor, never through a link)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from troth.errors import ConfigError
from troth.node import home as home_module
from troth.node.home import check_kept_dirs, secure_dir

_OTHER = 65534
"""Another user (nobody)."""

_ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user: lchown")


@pytest.fixture
def gone_cwd(tmp_path: Path) -> Iterator[None]:
    """The working directory removed (as a shell left in a deleted directory)."""
    before = os.getcwd()
    gone = tmp_path / "gone"
    gone.mkdir()
    os.chdir(gone)
    gone.rmdir()
    try:
        yield
    finally:
        os.chdir(before)


@pytest.mark.usefixtures("gone_cwd")
def test_secure_dir_of_an_absolute_home_works_from_a_removed_working_directory(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home" / "troth"
    assert secure_dir(home) == home
    assert home.stat().st_mode & 0o777 == 0o700
    check_kept_dirs(home)


@pytest.mark.usefixtures("gone_cwd")
def test_a_relative_home_from_a_removed_working_directory_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        secure_dir(Path("home"))
    with pytest.raises(ConfigError):
        check_kept_dirs(Path("home"))


@_ROOT_ONLY
def test_a_link_planted_after_the_check_makes_nothing_where_it_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    etc = tmp_path / "etc"
    etc.mkdir()
    checked = home_module._check_links

    def then_planted(path: Path) -> None:
        checked(path)  # nothing there yet: passes
        link = shared / "proj"
        link.symlink_to(etc)
        os.lchown(link, _OTHER, _OTHER)

    monkeypatch.setattr(home_module, "_check_links", then_planted)
    with pytest.raises(ConfigError, match="link of uid"):
        secure_dir(shared / "proj" / "troth")
    assert not (etc / "troth").exists()


def test_a_part_that_cannot_be_made_is_told_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part the walk cannot make (a directory this user may not write in, a read-only file
    system) is refused with the mkdir's reason, as `Path.mkdir` told it, not the look after."""

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "mkdir", denied)
    with pytest.raises(ConfigError, match="Permission denied"):
        secure_dir(tmp_path / "home")
