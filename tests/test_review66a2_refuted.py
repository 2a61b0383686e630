"""Review 66a2: attacks on the PKCS#11 and composite vaults that did not work; each test fails
if the defence it names breaks."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import token_vault, vault_fixture
from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError, KeyNotFound, TrothError
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import CompositeVault, KeyHandle, KeyPurpose, SoftwareVault
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]


def test_a_handle_naming_the_other_key_type_signs_retires_and_deletes_nothing(
    vault: Pkcs11Vault,
) -> None:
    """A handle with an Ed25519 key's CKA_ID but the P-256 type (a node.db row rewritten, as
    66g's attack on the software vault): no signature, no public key, no retirement, no
    deletion (the vault made the key, so `delete` would destroy it by id alone); the key then
    still signs and retires under its own handle."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    other = KeyHandle(vault.name, KeyType.P256, handle.key_id)
    for attempt in (
        lambda: vault.sign(other, b"m"),
        lambda: vault.public_key(other),
        lambda: vault.retire(other, KeyPurpose.PRIMARY),
        lambda: vault.delete(other),
    ):
        with pytest.raises(KeyNotFound):
            attempt()
    proof = vault.retire(handle, KeyPurpose.PRIMARY)
    with pytest.raises(KeyNotFound):
        vault.delete_retired(other, proof)  # the proof is the Ed25519 key's, by id alone
    verify_signature(vault.public_key(handle), vault.sign(handle, b"m"), b"m")
    vault.delete_retired(handle, proof)


def test_a_token_key_named_by_a_handle_of_the_software_part_is_not_found(
    vault: Pkcs11Vault, tmp_path: Path
) -> None:
    """A composite node: the token key's id and type under the software vault's name (and a
    software key's under the token's) reaches nothing: each vault refuses a handle it did not
    make, and the token key is neither signed with nor deleted through the other vault."""
    db = SqliteDatabase(tmp_path / "v.db")
    try:
        software = SoftwareVault(SqliteKeyStore(db), os.urandom(32))
        composite = CompositeVault(vault, software, frozenset({KeyType.X25519}))
        token_key = composite.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        channel = composite.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
        assert (token_key.vault, channel.vault) == ("pkcs11", "software")
        moved = KeyHandle("software", KeyType.ED25519, token_key.key_id)
        into_token = KeyHandle("pkcs11", KeyType.X25519, channel.key_id)
        for attempt in (
            lambda: composite.sign(moved, b"m"),
            lambda: composite.delete(moved),
            lambda: composite.delete_retired(moved, None),
            lambda: composite.public_key(into_token),
            lambda: composite.delete(into_token),
        ):
            with pytest.raises(TrothError):
                attempt()
        verify_signature(composite.public_key(token_key), composite.sign(token_key, b"m"), b"m")
        assert composite.public_key(channel).key_type is KeyType.X25519
    finally:
        db.close()


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_a_pin_session_neither_reads_nor_wraps_out_a_token_key(
    vault: Pkcs11Vault, key_type: KeyType
) -> None:
    """Another program with the PIN: CKA_VALUE of troth's private key is sensitive, and a
    wrapping key it makes (CKA_WRAP true) cannot wrap it out (CKA_EXTRACTABLE false: the token
    wraps an extractable P-256 key with that mechanism, checked while reviewing); the
    key cannot be made extractable (not modifiable) nor derive."""
    from pkcs11 import Attribute, Mechanism, ObjectClass
    from pkcs11 import KeyType as P11KeyType
    from pkcs11.exceptions import AttributeSensitive

    handle = vault.generate(key_type, KeyPurpose.PRIMARY)
    private = vault._find(handle, ObjectClass.PRIVATE_KEY, used=True)
    with vault._lock:
        wrapper = vault._session.generate_key(
            P11KeyType.AES, 256, template={Attribute.WRAP: True, Attribute.TOKEN: False}
        )
        with pytest.raises(AttributeSensitive):
            private[Attribute.VALUE]
        if key_type is KeyType.P256:  # SoftHSM2 wraps an extractable P-256 key so, no Ed25519
            with pytest.raises(vault._errors.PKCS11Error):
                wrapper.wrap_key(private, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        for name in (Attribute.EXTRACTABLE, Attribute.DERIVE):
            with pytest.raises(vault._errors.PKCS11Error):
                private[name] = True
        assert private[Attribute.NEVER_EXTRACTABLE] is True


def test_a_session_without_the_pin_sees_no_troth_object(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """A program on the token that has no PIN opens a public session beside the vault's (in
    another process: the login is the process's, so a process of its own is what it is):
    here, a read-only public session's view, found through a second token handle with no
    login, lists none of troth's key pairs, seal keys or retirement objects."""
    import subprocess
    import sys

    script = (
        "import sys\nfrom pkcs11 import lib, Attribute\n"
        "token = lib(sys.argv[1]).get_token(token_label=sys.argv[2])\n"
        "with token.open() as s:\n"
        "    labels = [str(o[Attribute.LABEL]) for o in s.get_objects()]\n"
        "print(sum(1 for l in labels if l.startswith('troth')))\n"
    )

    def seen() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, vault._key[0], softhsm.token_label],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    # the token is the session's: other tests plant public objects labelled troth on it (a
    # fresh-clone CI saw 2 of them here), so what counts is what this vault's keys add
    before = seen()
    handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    vault.retire(handle, KeyPurpose.PRIMARY)
    vault.generate_seal_key()
    assert seen() == before


def test_no_pin_in_errors_or_reprs(softhsm: SoftHsm) -> None:
    """A wrong PIN's error names the token and the refusal, not the PIN tried; neither a
    vault's repr nor its shared session's shows the PIN."""
    wrong = "pin-" + os.urandom(6).hex()
    with pytest.raises(ConfigError) as refused:
        Pkcs11Vault(softhsm.module, softhsm.token_label, wrong)
    assert wrong not in str(refused.value)
    assert wrong not in repr(refused.value.__cause__)
    with token_vault(softhsm) as vault:
        assert softhsm.pin not in repr(vault)
        assert softhsm.pin not in repr(vault._shared)


def test_threads_signing_on_two_vaults_of_one_token_all_verify(softhsm: SoftHsm) -> None:
    """Eight threads over two vault objects sharing the token's one session (one lock):
    every signature, of both key types, verifies."""
    with token_vault(softhsm) as one, token_vault(softhsm) as two:
        keys = [
            (one, one.generate(KeyType.ED25519, KeyPurpose.PRIMARY)),
            (two, two.generate(KeyType.P256, KeyPurpose.SIGNING)),
        ]
        publics = [vault.public_key(handle) for vault, handle in keys]
        failures: list[BaseException] = []

        def work(index: int) -> None:
            vault, handle = keys[index % 2]
            try:
                for n in range(10):
                    data = f"{index}:{n}".encode()
                    verify_signature(publics[index % 2], vault.sign(handle, data), data)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert failures == []


def test_a_p256_signature_is_over_the_message_hashed_never_the_raw_bytes(
    vault: Pkcs11Vault,
) -> None:
    """Mechanism downgrade: 32 bytes given to sign are hashed (CKM_ECDSA over SHA-256 of
    them), so a caller cannot get the key's raw signature over a digest of its choosing: the
    signature verifies over the bytes as a message, and not over their own hash taken as the
    message (what a raw signature of the digest would verify as)."""
    import hashlib

    handle = vault.generate(KeyType.P256, KeyPurpose.SIGNING)
    public = vault.public_key(handle)
    digest = hashlib.sha256(b"what the caller wants signed").digest()
    signature = vault.sign(handle, digest)
    verify_signature(public, signature, digest)
    with pytest.raises(TrothError):
        verify_signature(public, signature, b"what the caller wants signed")
