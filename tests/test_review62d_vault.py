"""Review 62d, the vaults: what the software vault and the PKCS#11 vault answer to handles and
blobs they should not take ("private keys live in a vault and are never readable by the agent";
docs/vault.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import token_vault, vault_fixture
from tests.test_vault_rekey import copy_node
from troth.crypto import KeyType, verify_signature
from troth.crypto.private import load_private_key
from troth.errors import KeyNotFound, VaultError
from troth.node import open_node
from troth.node.node import init_node
from troth.node.rekey import rekey_vault
from troth.secrets.upstreams import secret_aad
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose, SealingVault, SoftwareVault
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]

_AAD = secret_aad("github", "http-inject", '{"header": "Authorization"}')
"""Where a broker keeps an upstream secret: its name, engine and configuration's digest (all
in node.db, in the clear)."""


def test_a_token_key_named_under_the_other_key_type_is_no_key_of_the_vault(
    vault: Pkcs11Vault,
) -> None:
    """Review 62d, pkcs11 1. A handle is `<vault>:<key type>:<key id>`; the token looked a key
    up by its CKA_ID alone, whatever type the handle named. `pkcs11:p256:<id of an Ed25519
    key>` (a handle edited in node.db, or mistyped by a caller) then answered `public_key` with
    a bare `InvalidKey` (a CryptoError: the 32-byte Ed25519 point read as a P-256 key), not the
    vault's typed errors (docs/vault.md: `KeyNotFound` for a key it does not hold), and
    `retire` recorded a retirement of it as a P-256 key. The software vault refuses such a
    handle (the row's type is not the handle's). Now the token is asked for a key of the
    handle's type (CKA_KEY_TYPE): another type names no key."""
    ed = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    p256 = vault.generate(KeyType.P256, KeyPurpose.SIGNING)
    crossed = [
        (KeyHandle(vault.name, KeyType.P256, ed.key_id), KeyPurpose.PRIMARY),
        (KeyHandle(vault.name, KeyType.ED25519, p256.key_id), KeyPurpose.SIGNING),
    ]
    for handle, purpose in crossed:
        with pytest.raises(KeyNotFound):
            vault.public_key(handle)
        with pytest.raises(KeyNotFound):
            vault.retire(handle, purpose)
        with pytest.raises(KeyNotFound):
            vault.sign(handle, b"x")
    vault.sign(ed, b"still its own key")  # each key under its own type, as before
    vault.sign(p256, b"still its own key")


def test_a_blob_sealed_by_a_stolen_copy_is_not_taken_after_the_recovery(
    troth_home: Path,
) -> None:
    """Review 62d, vault 2. A thief copies a software node's directory (node.db and
    vault.key: every seal key's value in the clear to them). The owner recovers as
    docs/vault.md says: `troth vault rekey` gives each seal key a fresh value that seals from
    then on, and keeps the old values to unseal what they sealed (review 55d, vault 1). AES-GCM
    is symmetric: whoever holds a value seals too. A blob the thief seals under the old value,
    with the AAD of a secret's place (its name, engine and configuration's digest, all in
    node.db in the clear), unseals on
    the recovered node as one of its own. A thief who can later write node.db (and only that:
    no vault.key, no new value) so plants an upstream secret of their choice (the broker injects
    the thief's credential into the agent's requests: the agent works on the thief's account),
    or a broker ownership tag (`troth.secrets.keys`, a MAC made by sealing an empty plaintext)
    for any key handle. Before the rekey they could plant nothing: a blob needs a seal key
    value, and node.db alone holds none in the clear.

    Was a strict xfail until a rekey re-sealed every blob sealed under a seal key (the
    broker's secrets, audit key and ownership tags, in node.db: troth.secrets.reseal) under
    its new value, in the rekey's transaction, and kept only that value (review 62i, rekey 1:
    `tests/test_review62i_rekey.py`); the 55d test's blob held outside node.db then no longer
    opens, by design (docs/vault.md)."""
    init_node("n")
    with open_node("n") as node:
        assert isinstance(node.vault, SealingVault)
        seal_key = node.vault.generate_seal_key()
        node.vault.seal(seal_key, b"the owner's upstream token", _AAD)
    stolen = copy_node(troth_home / "nodes" / "n", troth_home / "stolen")
    rekey_vault("n", home=troth_home)
    db = SqliteDatabase(stolen / "node.db")
    try:  # the thief's vault: the copy, opened with the copied vault.key
        thief = SoftwareVault(SqliteKeyStore(db), (stolen / "vault.key").read_bytes())
        forged = thief.seal(seal_key, b"the thief's upstream token", _AAD)
    finally:
        db.close()
    with open_node("n") as node:
        assert isinstance(node.vault, SealingVault)
        with pytest.raises(VaultError):
            node.vault.unseal(seal_key, forged, _AAD)


Maker = Callable[[dict[int, str]], Any]
"""Generates, in the token, a key readable at first under troth's labels (by object class)."""


def readable_aes(vault: Pkcs11Vault, key_id: str) -> Maker:
    """A readable AES key of CKA_ID `key_id`, generated by the token (CKA_LOCAL true)."""
    p11 = vault._p11
    attr = p11.Attribute

    def make(labels: dict[int, str]) -> Any:
        template = {
            attr.TOKEN: True,
            attr.PRIVATE: True,
            attr.SENSITIVE: False,
            attr.EXTRACTABLE: True,
            attr.ID: bytes.fromhex(key_id),
            attr.LABEL: labels[int(p11.ObjectClass.SECRET_KEY)],
        }
        return vault._session.generate_key(p11.KeyType.AES, 256, template=template)

    return make


def readable_pair(vault: Pkcs11Vault, key_id: str) -> Maker:
    """An Ed25519 pair of CKA_ID `key_id` generated by the token (CKA_LOCAL true), its private
    key readable; returns the private key."""
    from pkcs11.util.ec import encode_named_curve_parameters

    p11 = vault._p11
    attr = p11.Attribute

    def make(labels: dict[int, str]) -> Any:
        common = {attr.TOKEN: True, attr.PRIVATE: True, attr.ID: bytes.fromhex(key_id)}
        _, private = vault._session.generate_keypair(
            p11.KeyType.EC_EDWARDS,
            mechanism=p11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={
                **common,
                attr.LABEL: labels[int(p11.ObjectClass.PUBLIC_KEY)],
                attr.EC_PARAMS: encode_named_curve_parameters("1.3.101.112"),
                attr.VERIFY: True,
            },
            private_template={
                **common,
                attr.LABEL: labels[int(p11.ObjectClass.PRIVATE_KEY)],
                attr.SENSITIVE: False,
                attr.EXTRACTABLE: True,
                attr.SIGN: True,
            },
        )
        return private

    return make


def swap_for_readable(
    vault: Pkcs11Vault, key_id: str, make: Maker, *, keep_private: bool = False
) -> bytes:
    """What a session with the PIN does: destroy the objects of `key_id` (the private key kept
    with `keep_private`), have the token generate a key readable at first with that CKA_ID and
    troth's labels (`make`), read its value, then make it sensitive and not extractable (or,
    with `keep_private`, destroy it: only its public key object stays). The value read."""
    attr = vault._p11.Attribute
    private_class = int(vault._p11.ObjectClass.PRIVATE_KEY)
    with vault._lock:
        found = list(vault._session.get_objects({attr.ID: bytes.fromhex(key_id)}))
        labels = {int(obj[attr.CLASS]): str(obj[attr.LABEL]) for obj in found}
        for obj in found:
            if not (keep_private and int(obj[attr.CLASS]) == private_class):
                obj.destroy()
        secret = make(labels)
        value = bytes(secret[attr.VALUE])  # readable: the planter knows the key
        assert secret[attr.LOCAL] is True  # the token generated it
        if keep_private:
            secret.destroy()
        else:
            secret[attr.SENSITIVE] = True
            secret[attr.EXTRACTABLE] = False
    return value


@pytest.mark.parametrize("keep_private", [False, True], ids=["pair", "public-object"])
def test_a_public_key_the_planter_read_the_pair_of_is_not_shown(
    vault: Pkcs11Vault, softhsm: SoftHsm, keep_private: bool
) -> None:
    """Review 62d, pkcs11 2. Review 60e made the vault use only keys the token generated and never
    let out, and showed (`public_key`) without a probe a public key object with CKA_LOCAL, the
    one thing PKCS#11 says of a public key object. A session with the PIN has the token generate
    a pair readable at first (CKA_LOCAL true on both objects), reads the private value, and puts
    the pair (its private key made sensitive) or its public key object alone (the real private
    key kept) under a signing key's CKA_ID and labels. The vault refuses to sign with the
    planted private key, but shows the planted public key: the secrets broker publishes it in its
    JWKS (`troth.secrets.keys`), and the planter signs tokens offline that relying parties
    accept, review 60e's attack again. Was a strict xfail until the vault showed a public key
    only once a signature of the key's private object (one the token generated and never let
    out) verified under it, or it recorded the point when it generated the pair."""
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    value = swap_for_readable(
        vault, handle.key_id, readable_pair(vault, handle.key_id), keep_private=keep_private
    )
    planter = load_private_key(KeyType.ED25519, value)
    with token_vault(softhsm) as fresh, pytest.raises(VaultError):  # nothing cached
        shown = fresh.public_key(handle)  # what the broker publishes
        verify_signature(shown, planter.sign(b"a token minted offline"), b"a token minted offline")
