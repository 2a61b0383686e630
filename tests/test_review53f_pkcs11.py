"""Review 53f, pkcs11: the attributes of the token's seal keys (docs/vault.md, "PKCS#11 vault").

A key pair is made not modifiable (review 48d, pkcs11 1: "no session turns it back on"); the
AES seal key that seals the broker's secrets was made with CKA_DERIVE, CKA_WRAP, CKA_UNWRAP,
CKA_SIGN and CKA_VERIFY false but modifiable, so any session holding the PIN could turn each
of them on for good (a derivation base, a wrapping key, the capabilities the template means to
withhold), and change its CKA_ID so that no unseal finds it."""

from __future__ import annotations

import pytest

from tests.support.hsm import vault_fixture  # noqa: F401  (the fixture `vault`)
from troth.vault.pkcs11 import Pkcs11Vault

pytestmark = pytest.mark.hsm


def test_a_seal_key_cannot_be_given_back_what_its_template_withholds(
    vault: Pkcs11Vault,
) -> None:
    """pkcs11 1: SoftHSM2 let a PIN session set CKA_DERIVE (and the rest) on a seal key."""
    import pkcs11
    from pkcs11 import Attribute

    seal = vault.generate_seal_key()
    secret = vault._seal_object(seal)
    assert secret[Attribute.MODIFIABLE] is False
    for withheld in (Attribute.DERIVE, Attribute.WRAP, Attribute.UNWRAP, Attribute.SIGN):
        with pytest.raises(pkcs11.exceptions.PKCS11Error):  # SoftHSM2: CKR_ACTION_PROHIBITED
            secret[withheld] = True
        assert secret[withheld] is False
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        secret[Attribute.ID] = bytes(16)
    sealed = vault.seal(seal, b"secret", b"aad")  # still seals and unseals
    assert vault.unseal(seal, sealed, b"aad") == b"secret"
    vault.delete_seal_key(seal)  # and is still destroyed (CKA_DESTROYABLE is another attribute)
