"""Review 53f, pkcs11: the attributes of the token's seal keys (docs/vault.md, "PKCS#11 vault").

A key pair is made not modifiable (review 48d, pkcs11 1: "no session turns it back on"); the
AES seal key that seals the broker's secrets was made with CKA_DERIVE, CKA_WRAP, CKA_UNWRAP,
CKA_SIGN and CKA_VERIFY false but modifiable, so any session holding the PIN could turn each
of them on for good (a derivation base, a wrapping key, the capabilities the template means to
withhold), and change its CKA_ID so that no unseal finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture  # noqa: F401  (the fixture `vault`)
from troth.identity.service import IdentityExists
from troth.node import Node
from troth.node.node import open_node
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


def _token_keys(node: Node) -> int:
    """The private key objects troth made in the node's token."""
    from pkcs11 import Attribute, ObjectClass

    vault = node.vault._primary  # type: ignore[attr-defined]  # the CompositeVault's token
    with vault._lock:
        found = vault._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        return sum(1 for key in found if str(key[Attribute.LABEL]).startswith("troth:"))


def test_a_create_refused_for_a_taken_name_leaves_no_key_in_the_token(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkcs11 3: `troth identity create NAME` for a name taken generated the new identity's
    primary and next key in the token, then failed on the name (IdentityExists) with the two
    key pairs left there: the batch of a vault that stores each key as it makes it
    (`_ImmediateKeys`) was told they were stored before the identity's row was written, so its
    `discard` deleted nothing. Every retry left two more, usable by any session with the PIN
    and retired by nothing (a software vault's rows roll back with the transaction)."""
    softhsm.init_node("hsm", monkeypatch)
    with open_node("hsm") as node:
        node.identities.create(now=1_800_000_000, name="agent")
        before = _token_keys(node)
        for _ in range(2):
            with pytest.raises(IdentityExists):
                node.identities.create(now=1_800_000_000, name="agent")
        assert _token_keys(node) == before


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # its finalizer
def test_a_vault_opened_after_its_tokens_session_died_signs(softhsm: SoftHsm) -> None:
    """pkcs11 4: one logged-in session per token per process (`_SharedSession`); when it
    ended under the process (a token reset or removed, a network HSM failing over:
    CKR_SESSION_HANDLE_INVALID), every operation failed with VaultError, and a vault opened
    afterwards in the same process shared the dead session, so a running node signed nothing
    until it was restarted. Now the operation that finds it dead fails, and the next one, of
    any vault over it, opens it again (the objects found through the old one forgotten)."""
    from troth.crypto import KeyType
    from troth.errors import VaultError
    from troth.vault import KeyPurpose

    first = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    second: Pkcs11Vault | None = None
    try:
        handle = first.generate(KeyType.ED25519, KeyPurpose.SIGNING)
        first._session.close()  # the session ends under the process
        with pytest.raises(VaultError):
            first.sign(handle, b"m")
        second = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
        assert second.sign(handle, b"m")
        assert first.sign(handle, b"n")  # the same vault, its cached key object dropped
        seal = first.generate_seal_key()
        sealed = first.seal(seal, b"s", b"aad")
        first._shared.session.close()  # again, found dead by an unseal this time
        with pytest.raises(VaultError):
            first.unseal(seal, sealed, b"aad")
        assert second.unseal(seal, sealed, b"aad") == b"s"
        assert first.unseal(seal, sealed, b"aad") == b"s"
        first.delete_seal_key(seal)
    finally:
        for vault in (first, second):
            if vault is not None:
                vault.close()
