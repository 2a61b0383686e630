"""Review 35b, pkcs11: objects a session on the token without the user PIN creates beside
troth's keys (review 34a, pkcs11 1 made troth's own objects private: such a session neither
sees nor destroys them, but it still creates public ones)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NOW, SoftHsm
from troth.identity import verify_history, verify_signed_by
from troth.node import open_node
from troth.vault.pkcs11 import Pkcs11Vault

# A PKCS#11 application on the token without the user PIN (a public session, PKCS#11 v3.0
# §5.6: it creates public objects) that plants, for each CKA_ID given, a public key object and
# a private key object of its own (CKA_PRIVATE false) with that ID. It knows the IDs from a
# copy of node.db (a stolen backup holds the key handles, not the token's keys).
_PLANT = """
import sys
import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters
lib = pkcs11.lib(sys.argv[1])
token = lib.get_token(token_label=sys.argv[2])
params = encode_named_curve_parameters("1.3.101.112")  # Ed25519
with token.open(rw=True) as session:
    for key_id in sys.argv[3:]:
        common = {Attribute.TOKEN: True, Attribute.PRIVATE: False,
                  Attribute.ID: bytes.fromhex(key_id), Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
                  Attribute.LABEL: "troth:" + key_id}
        session.create_object({**common, Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                               Attribute.EC_PARAMS: params,
                               Attribute.EC_POINT: bytes([4, 32]) + bytes(range(32)),
                               Attribute.VERIFY: True})
        session.create_object({**common, Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                               Attribute.EC_PARAMS: params, Attribute.VALUE: bytes(range(1, 33)),
                               Attribute.SIGN: True})
print("planted")
"""


def test_objects_planted_beside_the_keys_strand_no_identity(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 35b, pkcs11 1. A thief holds a copy of an HSM node's node.db (a stolen backup:
    the key handles, so the keys' CKA_IDs, but not the keys, which stay in the token) and an
    application that opens sessions on the token without the user PIN. Such a session cannot
    see troth's objects (private since review 34a, pkcs11 1), but creates public ones: a
    public key object and a private key object with the CKA_ID of the identity's current key,
    and of its committed next key. `Pkcs11Vault` looked a key up by class and CKA_ID and
    wanted exactly one object: it found two, and every signature failed ("no key ... in the
    token"), and so did every rotation, the recovery rotation (`--compromised`) included. The
    owner could not retire the stolen backup's keys, nor sign again.

    Was a strict xfail until `Pkcs11Vault` looked troth's keys up among the private objects
    only (troth makes every object private; a public key object of a key generated before
    review 34a, pkcs11 1 is still found, when no private one is)."""
    softhsm.init_node("hsm", monkeypatch)
    with open_node("hsm") as node:
        local = node.identities.create(now=NOW, name="agent")
        ids = [local.primary_key.key_id, local.next_key.key_id]
    done = subprocess.run(
        [sys.executable, "-c", _PLANT, softhsm.module, softhsm.token_label, *ids],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "planted", done.stderr
    with open_node("hsm") as node:
        signer = node.identities.signer("agent", now=NOW + 30)
        message = b"still the owner"
        signature = signer.sign(message)
        verify_signed_by(signer.identity, signer.attestation, message, signature, at=NOW + 30)
        rotated = node.identities.rotate("agent", now=NOW + 60, compromised=True)
        history = node.identities.export("agent")
    assert verify_history(history, now=NOW + 60).current_key == rotated.identity.current_key


_PLANT_SECRET = """
import sys
import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
lib = pkcs11.lib(sys.argv[1])
token = lib.get_token(token_label=sys.argv[2])
with token.open(rw=True) as session:
    session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.TOKEN: True,
                           Attribute.PRIVATE: False, Attribute.KEY_TYPE: KeyType.AES,
                           Attribute.ID: bytes.fromhex(sys.argv[3]), Attribute.VALUE: bytes(32),
                           Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
print("planted")
"""


def test_a_secret_key_planted_beside_a_seal_key_keeps_nothing_sealed(softhsm: SoftHsm) -> None:
    """Review 35b, pkcs11 1, for seal keys (what the secrets broker seals its token keys and
    stored secrets under): a public AES object a session without the PIN created with a seal
    key's CKA_ID made the look-up find two, and nothing sealed under it opened again.

    Added with the fix of the test above (the seal key look-up takes private objects only);
    it fails with KeyNotFound when that look-up is reverted."""
    vault = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    try:
        key = vault.generate_seal_key()
        sealed = vault.seal(key, b"a stored secret", b"aad")
    finally:
        vault.close()
    done = subprocess.run(
        [sys.executable, "-c", _PLANT_SECRET, softhsm.module, softhsm.token_label, key.key_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "planted", done.stderr
    reopened = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)  # no cached object
    try:
        assert reopened.unseal(key, sealed, b"aad") == b"a stored secret"
    finally:
        reopened.close()
