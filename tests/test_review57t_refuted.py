"""Review 57t: attacks on review 57p's path walk in `troth.node.home`, and on the lead's
`NodeTrust._extend_known` change, that did not work."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.fds import DescriptorLedger
from tests.support.gates import T, make_world, policy_admin_under, rotate, superseding
from tests.support.parties import make_party, verified_feed
from troth.errors import ConfigError
from troth.node import init_node, open_node
from troth.node.home import check_kept_dirs, secure_dir
from troth.node.trust import NodeTrust

_OTHER = 65534
"""Another user (nobody)."""


def test_a_thousand_refusals_leave_no_descriptor_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every error path of the walk closes what it opened: a part not there, a file on the
    way, a directory others write in, a link loop (and, as root, another user's link).
    Each descriptor the walk opens must be closed again (tests.support.fds)."""
    afile = tmp_path / "file"
    afile.write_bytes(b"x")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    refused: list[tuple[Any, Path]] = [
        (check_kept_dirs, tmp_path / "missing" / "home"),
        (check_kept_dirs, shared),
        (check_kept_dirs, loop / "home"),
        (secure_dir, afile / "home"),
        (secure_dir, loop / "home"),
    ]
    if os.geteuid() == 0:
        link = tmp_path / "theirs"
        link.symlink_to(tmp_path)
        os.lchown(link, _OTHER, _OTHER)
        refused += [(secure_dir, link / "home"), (check_kept_dirs, link)]
    ledger = DescriptorLedger(monkeypatch)
    for _ in range(1000 // len(refused) + 1):
        for call, path in refused:
            with pytest.raises(ConfigError):
                call(path)
            assert not ledger.held, (call, path)
    assert ledger.opens >= 1000  # the walk did open descriptors: each was closed


def test_a_home_made_meanwhile_by_another_creator_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `troth node create`s making one home at once: the one whose mkdir finds the other's
    directory (EEXIST) opens it and goes on, as `mkdir(exist_ok=True)` did."""
    home = tmp_path / "a" / "b" / "home"
    mkdir = os.mkdir

    def other_first(name: str, *args: Any, **kwargs: Any) -> None:
        mkdir(name, *args, **kwargs)  # the other creator's
        mkdir(name, *args, **kwargs)  # this one's: EEXIST

    monkeypatch.setattr(os, "mkdir", other_first)
    with pytest.raises(FileExistsError):
        os.mkdir(tmp_path / "probe")
    init_node("n", home=home)
    assert home.stat().st_mode & 0o777 == 0o700
    check_kept_dirs(home)


def test_parents_are_made_as_mkdir_parents_makes_them(tmp_path: Path) -> None:
    """The walk makes the missing parents with the umask's mode (Path.mkdir(parents=True)), the
    home itself 0700; a relative home with `..` is made where the kernel resolves it."""
    old = os.umask(0o022)
    cwd = os.getcwd()
    try:
        (tmp_path / "work").mkdir()
        os.chdir(tmp_path / "work")
        assert secure_dir(Path("../p/q/home")) == Path("../p/q/home")
    finally:
        os.chdir(cwd)
        os.umask(old)
    assert (tmp_path / "p").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "p" / "q").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "p" / "q" / "home").stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="root: a home under a directory root owns")
def test_a_home_under_a_directory_root_owns_0755_is_used(tmp_path: Path) -> None:
    """As root, a home under /root-like and /srv-like 0755 directories, reached through a link
    of root's (as /var -> /private/var): used, and `node start`'s check takes it."""
    (tmp_path / "private" / "srv").mkdir(parents=True, mode=0o755)
    (tmp_path / "srv").symlink_to("private/srv")
    home = tmp_path / "srv" / "troth"
    init_node("n", home=home)
    check_kept_dirs(home, home / "nodes", home / "nodes" / "n")


def test_a_legitimate_rotation_past_a_stale_anchors_feed_is_stored(troth_home: Path) -> None:
    """57p policies 2's refusal in `NodeTrust._extend_known` (an extension an anchor's held feed
    refutes is not stored) does not refuse the owner's own rotation that the other anchor's
    feed is behind on: the feed names the first rotation, the chain shows a second one that
    descends from it; stored over the copy (3 changes)."""
    world = make_world()
    acme, other = world.authority, make_party(world.vault, now=T)
    issuer = make_party(world.vault, now=T)
    first, rotated = rotate(world, issuer, T + 20)
    second, owner = rotate(world, rotated, T + 21)
    admin, chain = policy_admin_under(world, issuer, owner, T + 22)
    assert second.history in chain.histories
    feeds = {
        acme.identifier: verified_feed(acme, now=T + 25),
        other.identifier: superseding(other, first, other, T + 25),  # behind: the first
    }
    init_node("desk")
    with open_node("desk") as node:
        node.identities.observe(issuer.identity)
        for authority in feeds:
            node.wallet.trust(authority, f"node:{authority.digest.hex()[:8]}", now=T)
        trust = NodeTrust(node, None)
        trust.reload(T + 30)
        for authority, feed in feeds.items():
            trust.set_feed(authority, feed)
        assert trust.verifier is not None
        trust.verifier.verify(
            chain.encode(), presenter=admin.identifier, feeds=trust.feeds, now=T + 30
        )
        assert node.identities.stored_changes(issuer.identifier) == 3
