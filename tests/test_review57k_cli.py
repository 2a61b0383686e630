"""Review 57k: the CLI's home checks of review 57d (cli 2) and the lead's `secure_dir` owner
check, attacked.

Review 57k, cli 1: both look at the directory $TROTH_HOME resolves to (`os.stat`, `mkdir`'s
exist_ok, `os.chmod`: each follows a link), never at a link at $TROTH_HOME itself. Another user
who plants one where a home is to be made (TROTH_HOME=/tmp/troth-ci, not made yet; a shared
directory) pointing at a directory of this user's (root: /etc, /usr) passed both: the first
command made that directory 0700 (as root, /etc: no other user could read it) and kept its
nodes there, and the link's owner re-points it at will. A link on the way to a home, or to a
node's directory, must now be this user's or root's (`troth.node.home._check_links`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from troth.cli.main import cli, main
from troth.cli.output import Reporter
from troth.errors import ConfigError
from troth.node import Node, init_node

_OTHER = 65534
"""Another user (nobody)."""


@pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user: lchown needs root")
def test_a_link_of_another_user_at_the_home_is_refused_not_followed(
    troth_home: Path, tmp_path: Path
) -> None:
    target = tmp_path / "etc"  # a directory of this user's that others read (as /etc)
    target.mkdir()
    target.chmod(0o755)
    troth_home.symlink_to(target)
    os.lchown(troth_home, _OTHER, _OTHER)
    result = CliRunner().invoke(cli, ["identity", "create", "a", "--json"])
    assert result.exit_code == 3, result.stdout
    assert json.loads(result.stdout)["error"] == "ConfigError"
    assert target.stat().st_mode & 0o777 == 0o755
    assert not (target / "nodes").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user: lchown needs root")
def test_init_node_refuses_a_link_of_another_user_on_the_way(tmp_path: Path) -> None:
    """The library's `init_node` too, and a link anywhere on the way (`/tmp/x/home`, /tmp/x
    another user's link to a directory of this user's holding `home`)."""
    target = tmp_path / "mine"
    (target / "home").mkdir(parents=True)
    (target / "home").chmod(0o755)
    link = tmp_path / "x"
    link.symlink_to(target)
    os.lchown(link, _OTHER, _OTHER)
    with pytest.raises(ConfigError, match="is a link of uid"):
        init_node("n", home=link / "home")
    assert (target / "home").stat().st_mode & 0o777 == 0o755


def test_a_home_through_a_link_of_this_user_is_used_as_before(
    troth_home: Path, tmp_path: Path
) -> None:
    """A home kept elsewhere through a link of one's own (~/.local/share/troth to a data
    disk) still works, and so does one made fresh there."""
    target = tmp_path / "disk"
    target.mkdir(mode=0o700)
    troth_home.symlink_to(target)
    result = CliRunner().invoke(cli, ["identity", "create", "a", "--json"])
    assert result.exit_code == 0, result.stdout
    assert (target / "nodes").is_dir()


def close_fails_after_the_result(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """A node's close raises `error` once a command's result is printed (`Reporter.result`)."""
    close, result = Node.close, Reporter.result
    shown: list[bool] = []

    def showing(self: Reporter, *args: Any) -> None:
        result(self, *args)
        shown.append(True)

    def failing_close(self: Node) -> None:
        close(self)
        if shown:
            raise error

    monkeypatch.setattr(Reporter, "result", showing)
    monkeypatch.setattr(Node, "close", failing_close)


def test_a_bug_after_the_result_adds_no_second_document(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review 57k, cli 2. Review 57d (cli 1) keeps stdout to one document once a result is on
    it: a reported error after it goes to stderr. An exception that is no reported error (a
    bug: here the node's close failing after `identity create --json` printed its result) still
    went through `internal_error`, which printed its error object after the result: two
    documents on stdout, no JSON a script could read. Exit 70 either way; now its message goes
    to stderr once a result is on stdout."""
    close_fails_after_the_result(monkeypatch, RuntimeError("injected: a bug closing the node"))
    monkeypatch.setattr(sys, "argv", ["troth", "identity", "create", "a", "--json"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 70
    out, err = capsys.readouterr()
    assert json.loads(out)["name"] == "a"  # the result, alone
    assert "internal error: RuntimeError" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="a link of another user: lchown needs root")
def test_a_link_planted_as_the_home_is_made_is_refused(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 57k, cli 3: the home appears, as another user's link, between `secure_dir`'s
    look at the path (not there yet) and its `mkdir` (a race in a shared directory, won
    here at once): followed, its target made 0700 and given the nodes. `secure_dir` now looks
    again after its `mkdir`, and changes the directory it opened (not following a link it did
    not check)."""
    target = tmp_path / "etc"
    target.mkdir()
    target.chmod(0o755)
    mkdir = os.mkdir  # the walk makes each part in the directory before it (review 57t, 2)

    def racing(name: str, *args: Any, **kwargs: Any) -> None:
        if name == troth_home.name and not os.path.lexists(troth_home):  # the other user wins
            troth_home.symlink_to(target)
            os.lchown(troth_home, _OTHER, _OTHER)
        mkdir(name, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", racing)
    with pytest.raises(ConfigError, match="is a link of uid"):
        init_node("n", home=troth_home)
    assert target.stat().st_mode & 0o777 == 0o755


@pytest.mark.skipif(os.geteuid() != 0, reason="a directory of another user: chown needs root")
def test_a_home_of_another_user_is_told_what_would_do(troth_home: Path) -> None:
    """Review 57k, cli 4. Review 57d (cli 2) refuses a home of another user through
    `check_kept_dirs`, whose one message said "chmod 700 it": for a home that is private
    already but another user's (root in a CI container over a volume of uid 1000) that
    changes nothing, and the command is refused again. The message says whose it is and
    what would do: a directory of this user's, or chown."""
    troth_home.mkdir(mode=0o700)
    os.chown(troth_home, _OTHER, _OTHER)
    result = CliRunner().invoke(cli, ["identity", "list", "--json"])
    assert result.exit_code == 3, result.stdout
    message = json.loads(result.stdout)["message"]
    assert f"uid {_OTHER}" in message
    assert "chmod 700" not in message
    assert "chown" in message
