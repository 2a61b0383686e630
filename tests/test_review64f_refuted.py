"""Review 64f: attacks on the PKCS#11 vault and the rollback guard that did not work, each kept as
a test that fails if the defence it names breaks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.backups import copy_db, restore_db
from tests.support.hsm import vault_fixture
from tests.test_review64f_rollback import SCOPE, two_nodes_fixture, voided
from troth.crypto import KeyType, verify_signature
from troth.errors import VaultError
from troth.storage import SqliteDatabase
from troth.storage.rollback import (
    Restored,
    RollbackGuard,
    guard_path,
    read_guard,
    restored_rows,
)
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["two_nodes_fixture", "vault_fixture"]


def _check(path: Path) -> tuple[Restored, Restored | None, list[Restored]]:
    """The rollback check of node.db at `path`, run twice: what each found (the first must
    find a restore), and the restores node.db records."""
    db = SqliteDatabase(path)
    try:
        guard = RollbackGuard(db, SCOPE)
        first, again = guard.check(NOW, voided), guard.check(NOW + 1, voided)
        if first is None:
            pytest.fail(f"{path} taken as current")
        return first, again, restored_rows(db)
    finally:
        db.close()


def test_another_nodes_store_behind_the_guard_is_found_failed_closed_and_recorded(
    two_nodes: tuple[Path, Path], tmp_path: Path
) -> None:
    """Node `mine`'s node.db (2 writes) put in place of `other`'s (its guard at 5): a restored
    copy, failed closed on once, the counts recorded for `troth node status`; never healed
    silently (the second check finds the store current only because the first said so)."""
    mine, other = two_nodes
    copy_db(mine, tmp_path / "mine-copy.db")
    restore_db(other, tmp_path / "mine-copy.db")
    first, again, recorded = _check(other)
    assert (first.counter, first.guard, first.voided) == (2, 5, voided())
    assert again is None
    assert recorded == [first]


def test_another_nodes_guard_ahead_of_the_store_fails_closed_and_is_never_lowered(
    two_nodes: tuple[Path, Path],
) -> None:
    """`other`'s guard (5) put beside `mine`'s current node.db (2): failed closed on (what
    `mine` counted cannot be told from a restore), and the guard stays at 5, not lowered."""
    mine, other = two_nodes
    shutil.copy(guard_path(other), guard_path(mine))
    first, _, _ = _check(mine)
    assert (first.counter, first.guard) == (2, 5)
    assert read_guard(guard_path(mine)) == {SCOPE: 5}


def test_a_store_with_its_count_row_reverted_alone_is_found(two_nodes: tuple[Path, Path]) -> None:
    """node.db with `rollback_counters` alone reverted to before its scope was armed (the row
    gone, every other table current): the guard's entry is there, so a restored copy."""
    mine, _ = two_nodes
    db = SqliteDatabase(mine)
    try:
        db.execute("DELETE FROM rollback_counters WHERE scope = ?", (SCOPE,))
    finally:
        db.close()
    first, _, _ = _check(mine)
    assert (first.counter, first.guard) == (0, 2)


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_a_key_another_tool_made_under_a_troth_keys_label_is_never_used_for_it(
    vault: Pkcs11Vault, key_type: KeyType
) -> None:
    """Two identities' keys on one token, their labels colliding: another program with the PIN
    has the token generate a pair (extractable, not sensitive: its value readable) under troth's
    label for an identity's key, with another CKA_ID. troth finds its keys by CKA_ID among
    those the token generated and never let out: it signs and shows its own key, and a handle
    naming the planted pair's CKA_ID is refused (`VaultError`), never signed with."""
    from pkcs11 import Attribute, Mechanism
    from pkcs11 import KeyType as P11KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    handle = vault.generate(key_type, KeyPurpose.PRIMARY)
    public = vault.public_key(handle)
    planted_id = os.urandom(16)
    edwards = key_type is KeyType.ED25519
    private = vault._find(handle, vault._p11.ObjectClass.PRIVATE_KEY)
    with vault._lock:
        label = str(private[Attribute.LABEL])
        common = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.ID: planted_id}
        vault._session.generate_keypair(
            P11KeyType.EC_EDWARDS if edwards else P11KeyType.EC,
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN if edwards else Mechanism.EC_KEY_PAIR_GEN,
            public_template={
                **common,
                Attribute.LABEL: label,
                Attribute.EC_PARAMS: encode_named_curve_parameters(
                    "1.3.101.112" if edwards else "secp256r1"
                ),
            },
            private_template={
                **common,
                Attribute.LABEL: label,
                Attribute.SENSITIVE: False,
                Attribute.EXTRACTABLE: True,
                Attribute.SIGN: True,
            },
            store=True,
        )
    verify_signature(public, vault.sign(handle, b"mine"), b"mine")
    assert vault.public_key(handle) == public
    planted = type(handle)(handle.vault, key_type, planted_id.hex())
    with pytest.raises(VaultError, match="was not generated in the token, or was let out"):
        vault.sign(planted, b"theirs")
    with vault._lock:  # the planted pair goes: the token is the test session's
        for obj in list(vault._session.get_objects({Attribute.ID: planted_id})):
            obj.destroy()


def test_a_token_key_value_reads_as_sensitive(vault: Pkcs11Vault) -> None:
    """No troth API gives a key's bytes, and the token gives none either: CKA_VALUE of a seal
    key (AES: the one whose value alone would unseal every secret) is refused."""
    key = vault.generate_seal_key()
    secret = vault._seal_object(key)
    with vault._lock, pytest.raises(vault._errors.AttributeSensitive):
        secret[vault._p11.Attribute.VALUE]
