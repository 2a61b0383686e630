"""Review 48r, pkcs11 1 (review 48k, pkcs11 5, closed here): the secrets broker retires its
token keys through the token (`RetiringVault.retire`, a proof recorded with the handle), so
a PKCS#11 vault deletes no key without a proof, and the broker retires only a key it made
(an ownership tag sealed under its seal key when it made the key: docs/secrets.md, "`token`";
docs/vault.md, "PKCS#11 vault")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import token_vault
from tests.test_review48k_pkcs11 import markers, still_signs, write_node_db
from troth import limits
from troth.crypto import KeyType
from troth.errors import KeyNotFound
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.node import open_node
from troth.secrets.keys import RETIRED_KEY_GRACE, BrokerKeys
from troth.secrets.store import SqliteSecretStore
from troth.storage import SqliteDatabase
from troth.storage.base import RETIRED_PROOF_MARK
from troth.vault import KeyHandle, KeyPurpose, SealingVault, Vault
from troth.vault.pkcs11 import Pkcs11Vault

pytestmark = pytest.mark.hsm


def broker_keys(node_vault: Vault, db: SqliteDatabase, now: int) -> BrokerKeys:
    """The node's broker keys, as a broker node opens them."""
    assert isinstance(node_vault, SealingVault)
    return BrokerKeys(SqliteSecretStore(db), node_vault, key_type=KeyType.P256, now=now)


def token_handles(db: SqliteDatabase) -> list[KeyHandle]:
    return [KeyHandle.parse(k.handle) for k in SqliteSecretStore(db).signing_keys()]


@pytest.mark.parametrize("how", ["compromised", "prune"])
def test_a_broker_record_pointed_at_a_current_signing_key_does_not_destroy_it(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path, how: str
) -> None:
    """Review 48k, pkcs11 5, its broker form. A writer of node.db without the PIN points a
    retired token key's record at an identity's current signing key (its label says signing,
    as the broker's keys' do): the next compromised rotation, or the prune of a record it
    dated long ago, destroyed it, and the identity failed to sign until its renewal or a
    rotation. Now the broker retires only a key whose ownership tag (sealed under its seal
    key, in the token) names it: the record is dropped, the key stays."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        node.identities.create(now=now, name="agent")
        signing = node.identities.signer("agent", now=now).handle
        keys = broker_keys(node.vault, node.db, now)
        keys.rotate_signing_key(now + 1)  # one retired token key, one current (made later)
        own, current = token_handles(node.db)
    write_node_db(
        troth_home,
        "UPDATE secret_signing_keys SET handle = ?, retired_at = 1 WHERE retired_at IS NOT NULL",
        (str(signing),),
    )
    with open_node("hsm") as node:
        keys = broker_keys(node.vault, node.db, now)
        if how == "compromised":
            keys.rotate_signing_key(now + 2, compromised=True)
            with pytest.raises(KeyNotFound):  # its own: withdrawn, deleted (with its proof)
                node.vault.public_key(current)
        else:
            assert keys.forget_retired(now + limits.MAX_LEASE_TTL + RETIRED_KEY_GRACE) == 1
        assert str(signing) not in [str(h) for h in token_handles(node.db)]  # the row went
        node.identities.forget_retired()
        assert node.identities.store.retired_key_records(16) == []
        node.identities.signer("agent", now=now + 60).sign(b"still signs")
    assert still_signs(signing)
    assert still_signs(own)  # no record names it now: an orphan (docs/vault.md)


def test_a_broker_key_made_before_is_left_in_the_token(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """A token key the broker made before review 48r has no ownership tag: nothing tells it
    from a key a planted record names, so a compromised rotation or a prune leaves it in the
    token (an orphan, withdrawn from the JWKS all the same) and drops its row."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        broker_keys(node.vault, node.db, now)
        (older,) = token_handles(node.db)
    write_node_db(troth_home, "DELETE FROM secret_meta WHERE name LIKE 'token-key:%'", ())
    with open_node("hsm") as node:
        keys = broker_keys(node.vault, node.db, now)
        keys.rotate_signing_key(now + 1, compromised=True)
        assert older.key_id not in {h.key_id for h in token_handles(node.db)}
        assert node.identities.store.retired_key_records(16) == []
    assert still_signs(older)


def test_a_compromised_rotation_killed_before_or_after_its_commit(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """Crash safety. Killed before its commit (`secrets.rotate-key.before-commit`) the
    rotation rolls back, the withdrawn key current with a retirement object no commit
    recorded (a planted record with no proof or another deletes nothing); killed after it
    (`secrets.rotate-key.after-commit`), `retired_keys` holds the key with its proof and the
    node's next `forget_retired` deletes the key and every retirement object of it."""
    import subprocess
    import sys

    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        broker_keys(node.vault, node.db, now)
        (first,) = token_handles(node.db)

    def rotate_key(crash: str) -> None:
        env = {**__import__("os").environ, CRASH_ENV: crash}
        done = subprocess.run(
            [sys.executable, "-m", "troth.cli.main", "secret", "rotate-key", "--compromised",
             "--node", "hsm"],
            capture_output=True, text=True, timeout=90, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == CRASH_EXIT_CODE, (done.stdout, done.stderr)

    rotate_key("secrets.rotate-key.before-commit")
    with open_node("hsm") as node:
        assert token_handles(node.db) == [first]  # rolled back
        assert node.identities.store.retired_key_records(16) == []
    with token_vault(softhsm) as vault:
        assert markers(vault, first) == 1  # made before the kill
    for text in (str(first), f"{first}{RETIRED_PROOF_MARK}{'cd' * 16}"):
        write_node_db(troth_home, "INSERT INTO retired_keys VALUES (?)", (text,))
    with open_node("hsm") as node:
        assert node.identities.forget_retired() == 2
    assert still_signs(first)
    rotate_key("secrets.rotate-key.after-commit")
    with open_node("hsm") as node:
        (record,) = node.identities.store.retired_key_records(16)
        assert record.startswith(f"{first}{RETIRED_PROOF_MARK}")
        (second,) = token_handles(node.db)
        assert second != first
    assert still_signs(first)  # left by the kill, recorded with its proof
    with open_node("hsm") as node:
        assert node.identities.forget_retired() == 1
        assert node.identities.store.retired_key_records(16) == []
    assert not still_signs(first)
    assert still_signs(second)
    with token_vault(softhsm) as vault:
        assert markers(vault, first) == 0  # both retirement objects went with the key


def test_no_key_is_deleted_without_a_proof_or_by_a_plain_delete(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`delete_retired` with no proof deletes nothing now, a signing key included (the
    broker records proofs); a plain `delete` destroys a signing key only when that vault
    object made it or the token holds a retirement of it, as an identity key."""
    first = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    try:
        signing = first.generate(KeyType.P256, KeyPurpose.SIGNING)
        made_here = first.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        first.delete(made_here)  # (undoing what failed)
    finally:
        first.close()
    with token_vault(softhsm) as vault:
        with pytest.raises(KeyNotFound):
            vault.delete_retired(signing, None)
        with pytest.raises(KeyNotFound):
            vault.delete(signing)
        vault.sign(signing, b"kept")
        proof = vault.retire(signing, KeyPurpose.SIGNING)
        with pytest.raises(KeyNotFound):
            vault.delete_retired(signing, "ab" * 16)
        vault.delete_retired(signing, proof)
        with pytest.raises(KeyNotFound):
            vault.public_key(signing)
        with pytest.raises(KeyNotFound):
            vault.public_key(made_here)


def test_a_tag_copied_to_another_handle_names_no_key(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """The ownership tag binds its handle (in the AAD): the writer who copies the tag of the
    broker's own key under the name of an identity's signing key, and points the row there,
    gets nothing retired."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        node.identities.create(now=now, name="agent")
        signing = node.identities.signer("agent", now=now).handle
        broker_keys(node.vault, node.db, now).rotate_signing_key(now + 1)
        own, _ = token_handles(node.db)
    write_node_db(
        troth_home,
        "INSERT INTO secret_meta SELECT ?, value FROM secret_meta WHERE name = ?",
        (f"token-key:{signing}", f"token-key:{own}"),
    )
    write_node_db(
        troth_home,
        "UPDATE secret_signing_keys SET handle = ? WHERE retired_at IS NOT NULL",
        (str(signing),),
    )
    with open_node("hsm") as node:
        broker_keys(node.vault, node.db, now).rotate_signing_key(now + 2, compromised=True)
        node.identities.forget_retired()
        assert node.identities.store.retired_key_records(16) == []
        node.identities.signer("agent", now=now + 60).sign(b"still signs")
    assert still_signs(signing)
