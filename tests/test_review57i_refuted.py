"""Review 57i: attacks on the fixes of review 57b's restore 1 and pkcs11 3 that did not work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, node_db, restore_db, restores_found
from tests.test_review57i_restore import copied_after_a_rotation
from troth.errors import IdentityError, IdentityFailure
from troth.node import init_node, open_node
from troth.vault.pkcs11_session import module_spelling as _module


def test_a_second_process_on_a_restored_copy_is_held_too(troth_home: Path) -> None:
    """Two opens of a restored node.db (a CLI beside the node): the first finds the restore
    and holds the identities; the second, whose check then finds the store current, must not
    sign with the copy's keys either."""
    init_node("laptop")
    path = node_db(troth_home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
    copy_db(path, troth_home / "copy.db")
    with open_node("laptop") as node:
        node.identities.rotate("courier", now=NOW + 1, compromised=True)
    restore_db(path, troth_home / "copy.db")
    with open_node("laptop") as first, open_node("laptop") as second:
        assert first.identities.check_restored(NOW + 2) is not None
        assert second.identities.check_restored(NOW + 2) is None  # found once
        with pytest.raises(IdentityError) as refused:
            second.identities.signer("courier", now=NOW + 2)
        assert refused.value.reason is IdentityFailure.ROLLBACK
    assert len(restores_found(path)) == 1


def test_a_copy_from_after_the_last_rotation_is_not_held(troth_home: Path) -> None:
    """No false alarm: a copy taken after the last rotation, put back, is current (its count is
    the guard's), its identities sign."""
    path = copied_after_a_rotation(troth_home)
    with open_node("laptop") as node:
        node.identities.signer("courier", now=NOW + 2).sign(b"m")  # not counted
    restore_db(path, troth_home / "copy.db")
    with open_node("laptop") as node:
        assert node.identities.check_restored(NOW + 3) is None
        node.identities.signer("courier", now=NOW + 3).sign(b"m")
    assert restores_found(path) == []


def test_a_bare_module_name_is_not_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 3's resolution follows links of an absolute path only: a bare name (a
    node.json can hold none, review 53f, but the vault's API takes one) resolved with realpath
    would become the working directory's file of that name, a planted library."""
    (tmp_path / "libplanted.so").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert _module("libplanted.so") == "libplanted.so"
    link = tmp_path / "link.so"
    link.symlink_to(tmp_path / "libplanted.so")
    assert _module(str(link)) == os.path.realpath(tmp_path / "libplanted.so")
