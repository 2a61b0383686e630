"""Review 66e2: attacks on the policy signing hold of a restored node.db (66c2) that did not
work: its table made on first use, the restore key, and `--resign` after the operator's
install."""

from __future__ import annotations

import sqlite3
from hashlib import sha256
from pathlib import Path

import pytest

from tests.support.backups import copy_db, node_db, restore_db
from tests.test_review45f_policy import bundles
from tests.test_review66o_hold import _sign
from troth.clock import SystemClock
from troth.errors import PolicyError, PolicyFailure, StorageError
from troth.node import open_node
from troth.node.services.policy import install_bundle, resign_held_bundle
from troth.storage.sqlite import BUSY_TIMEOUT_ENV


def _restored(home: Path, tmp: Path, *, before_first: bool) -> tuple[Path, Path, Path]:
    """Node acme restored from a copy taken before revision 1 (or after it) was installed."""
    first, second = bundles(home, tmp)
    path, copy = node_db(home, "acme"), tmp / "copy.db"
    if before_first:
        copy_db(path, copy)
    install_bundle(home, "acme", first.read_bytes(), clock=SystemClock())
    if not before_first:
        copy_db(path, copy)
    install_bundle(home, "acme", second.read_bytes(), clock=SystemClock())
    restore_db(path, copy)
    return path, first, second


def test_the_restore_key_is_stable_across_opens(troth_home: Path, tmp_path: Path) -> None:
    """The operator's word is keyed to `counter:guard:voided:at` of the last restore found: a
    second and third open of the same node.db (the guard raised at the first) find no new
    restore, so the word stands; were the key re-made per open, signing stayed refused."""
    _, _, second = _restored(troth_home, tmp_path, before_first=True)
    with pytest.raises(PolicyError) as caught:
        _sign(troth_home, 3)
    assert caught.value.reason is PolicyFailure.RESTORED
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())
    for _ in range(2):
        with open_node("acme", home=troth_home):
            pass
    assert _sign(troth_home, 3)


def test_resign_of_a_held_back_bundle_works_after_the_operator_installs_the_newest(
    troth_home: Path, tmp_path: Path
) -> None:
    """The copy holds revision 1 (held back), the fleet 2: `--resign` is refused (RESTORED)
    until the operator installs revision 2, then re-signs revision 2 as 3."""
    _, first, second = _restored(troth_home, tmp_path, before_first=False)
    with pytest.raises(PolicyError) as caught:
        resign_held_bundle(
            troth_home, "acme", digest=sha256(first.read_bytes()).hexdigest(), clock=SystemClock()
        )
    assert caught.value.reason is PolicyFailure.RESTORED
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())
    summary = resign_held_bundle(
        troth_home, "acme", digest=sha256(second.read_bytes()).hexdigest(), clock=SystemClock()
    )
    assert summary["revision"] == 3
    assert summary["new"]


def test_signing_a_restored_node_under_anothers_write_lock_is_a_typed_error(
    troth_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hold's table is made in a write transaction on a read path; with another process
    holding node.db's write lock the signing fails with a StorageError (the signer's key
    writes first anyway), never a raw sqlite3 error."""
    path, _, _ = _restored(troth_home, tmp_path, before_first=True)
    with pytest.raises(PolicyError):
        _sign(troth_home, 3)  # the restore found and recorded
    monkeypatch.setenv(BUSY_TIMEOUT_ENV, "0")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with pytest.raises((StorageError, PolicyError)) as caught:
            _sign(troth_home, 3)
        assert not isinstance(caught.value, sqlite3.Error)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_copy_without_the_table_holds(troth_home: Path, tmp_path: Path) -> None:
    """A node.db whose operator's-word table was dropped (a copy from before it existed)
    reads as not cleared: the hold stands, and the install makes the table again."""
    path, _, second = _restored(troth_home, tmp_path, before_first=True)
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE policy_sign_cleared")
    conn.commit()
    conn.close()
    with pytest.raises(PolicyError) as caught:
        _sign(troth_home, 3)
    assert caught.value.reason is PolicyFailure.RESTORED
    install_bundle(troth_home, "acme", second.read_bytes(), clock=SystemClock())
    assert _sign(troth_home, 3)
