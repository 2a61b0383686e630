"""Review 48d: the PKCS#11 vault's key objects (docs/vault.md, "PKCS#11 vault"). An identity's
primary and signing keys are for signing only (troth.vault.base: "Signing keys sign; X25519
keys do DH"); the token must not let a session use them for anything else. And the keys the
node destroys in the token are ones it retired there (pkcs11 3, fixed by review 48k)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture  # noqa: F401  (the fixture `vault`)
from tests.test_vault_rekey import node_path
from troth.crypto import KeyType
from troth.storage import SqliteDatabase
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

pytestmark = pytest.mark.hsm


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
@pytest.mark.parametrize("purpose", [KeyPurpose.PRIMARY, KeyPurpose.SIGNING])
def test_a_signing_key_cannot_derive_a_shared_secret(
    vault: Pkcs11Vault, key_type: KeyType, purpose: KeyPurpose
) -> None:
    """Review 48d, pkcs11 1. The private template set no CKA_DERIVE, and python-pkcs11 asks
    for its default capabilities of an EC key (sign, verify, derive): every P-256 primary and
    signing key was made with CKA_DERIVE = true. Any session holding the PIN could run
    CKM_ECDH1_DERIVE with the identity's key against a point of its choosing and read the
    shared secret (a derived key it makes extractable): a Diffie-Hellman oracle on a signing
    key, and on a token that does not check that the point is on the curve, an invalid-curve
    attack recovers the private value. Now every key pair is made with CKA_DERIVE = false
    (and not modifiable), and the token refuses the derivation."""
    import pkcs11
    from asn1crypto.core import OctetString
    from pkcs11 import Attribute, Mechanism, ObjectClass

    handle = vault.generate(key_type, purpose)
    private = vault._find(handle, ObjectClass.PRIVATE_KEY)
    assert private[Attribute.SENSITIVE] is True
    assert private[Attribute.EXTRACTABLE] is False
    assert private[Attribute.ALWAYS_SENSITIVE] is True
    assert private[Attribute.NEVER_EXTRACTABLE] is True
    assert private[Attribute.SIGN] is True
    assert private[Attribute.DERIVE] is False
    assert private[Attribute.MODIFIABLE] is False
    with pytest.raises(pkcs11.exceptions.PKCS11Error):  # SoftHSM2: CKR_ACTION_PROHIBITED
        private[Attribute.DERIVE] = True
    assert private[Attribute.DERIVE] is False
    if key_type is KeyType.P256:
        public = vault._find(handle, ObjectClass.PUBLIC_KEY)
        point = bytes(OctetString.load(public[Attribute.EC_POINT]).native)
        derive = vars(pkcs11._pkcs11)["DeriveMixin"].derive_key  # offered with CKA_DERIVE only
        with pytest.raises(pkcs11.exceptions.PKCS11Error):  # CKR_KEY_FUNCTION_NOT_PERMITTED
            derive(
                private,
                pkcs11.KeyType.GENERIC_SECRET,
                256,
                mechanism=Mechanism.ECDH1_DERIVE,
                mechanism_param=(pkcs11.KDF.NULL, None, point),
                template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False},
            )
    assert vault.sign(handle, b"still signs")


def test_a_key_pair_made_before_loses_derive_when_it_first_signs(vault: Pkcs11Vault) -> None:
    """Review 48d, pkcs11 1, for the keys tokens already hold: a P-256 key pair made as before
    the fix (CKA_DERIVE true, modifiable) has CKA_DERIVE cleared the first time a process signs
    with it, and still signs."""
    import pkcs11
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.util.ec import encode_named_curve_parameters

    from troth.crypto import verify_signature
    from troth.vault import KeyHandle

    key_id = "ab" * 16
    common = {Attribute.TOKEN: True, Attribute.ID: bytes.fromhex(key_id)}
    with vault._lock:
        vault._session.generate_keypair(  # the templates before the fix
            pkcs11.KeyType.EC,
            mechanism=pkcs11.Mechanism.EC_KEY_PAIR_GEN,
            public_template={
                **common,
                Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1"),
                Attribute.VERIFY: True,
                Attribute.PRIVATE: True,
                Attribute.MODIFIABLE: False,
            },
            private_template={
                **common,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.PRIVATE: True,
            },
            store=True,
        )
    handle = KeyHandle(vault.name, KeyType.P256, key_id)
    assert vault._find(handle, ObjectClass.PRIVATE_KEY)[Attribute.DERIVE] is True  # premise
    verify_signature(vault.public_key(handle), vault.sign(handle, b"m"), b"m")
    assert vault._find(handle, ObjectClass.PRIVATE_KEY)[Attribute.DERIVE] is False
    verify_signature(vault.public_key(handle), vault.sign(handle, b"n"), b"n")


def test_a_deleted_key_leaves_no_object_cached(vault: Pkcs11Vault) -> None:
    """Review 48d, pkcs11 2. `generate` cached the new private key object under its bare key
    id, which `sign` never looks up (it caches `<type>:<id>`) and `delete` never removes: one
    dead entry per key made, for the life of the process (a running node renews purpose keys
    for as long as it runs), each holding the object of a key destroyed in the token. Now
    `generate` caches it where `sign` and `delete` look."""
    for key_type in (KeyType.ED25519, KeyType.P256):
        handle = vault.generate(key_type, KeyPurpose.SIGNING)
        vault.sign(handle, b"m")
        vault.delete(handle)
    seal = vault.generate_seal_key()
    vault.delete_seal_key(seal)
    assert vault._objects == {}


def test_a_planted_retired_key_record_does_not_destroy_a_current_key(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """Review 48d, pkcs11 3, found and not fixed. `retired_keys` (review 47f) names token keys
    a committed rotation or renewal retired; `IdentityService.forget_retired` (after such a
    commit, and in every maintenance round of a running node) destroys them in the token. A
    writer of node.db who holds no PIN can insert a row naming an identity's current primary
    key (its handle is in `identities.primary_key`), and the node, which holds the PIN,
    destroys it: the identity neither signs nor rotates again, for good, where every other
    change to node.db is undone by restoring it. A guard (never destroy a key a local identity
    or a purpose key record still names) needs an indexed lookup of handles the schema does
    not have (a full scan of `identities`, whose histories precede the handles, per commit that
    retires a token key); and it would not stop a writer who first points the identity at
    another handle. Was a strict xfail until review 48k: a retirement is recorded in the token
    before its commit (a private object only a PIN session makes, holding a proof the commit
    records), and the node destroys a key only with that proof, or, without one, a key whose
    label in the token says it is a purpose key (tests/test_review48k_pkcs11.py)."""
    from troth.node import open_node

    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        primary = node.identities.create(now=now, name="agent").primary_key
    db = SqliteDatabase(node_path(troth_home, "hsm") / "node.db")
    try:
        db.execute("INSERT INTO retired_keys VALUES (?)", (str(primary),))
    finally:
        db.close()
    with open_node("hsm") as node:
        node.identities.forget_retired()  # what a running node's maintenance round does
        node.identities.signer("agent", now=now).sign(b"still signs")
        node.vault.public_key(primary)
