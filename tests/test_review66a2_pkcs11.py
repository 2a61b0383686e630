"""Review 66a2, the PKCS#11 vault: what a session with the token's PIN does to troth's keys.

pkcs11 1 (low): a key pair made before review 64f is copyable (`CKA_COPYABLE` true), and no
call clears it: SoftHSM2 refuses `CKA_COPYABLE = false` on a key that is not modifiable (every
key since review 48d) and on one that is (`AttributeReadOnly`), so there is no migration in
place. A session with the PIN copies such a key (C_CopyObject with nothing changed), and the
vault then refuses both objects (review 64k: a `VaultError`), so the identity signs nothing
until it is rotated with `--compromised`. docs/vault.md says to replace those keys, but
nothing told the operator which keys were made so: the vault signed with them in silence.
Fixed: the first time a process signs with a copyable key the vault logs a warning naming the
key and the remedy (`key ... is copyable`), once a process per key, as it does for modifiable
seal keys (review 53q); a key made now (not copyable) logs nothing.

pkcs11 2 (medium): a session that ends under the process (the token removed, reset, a network
HSM failing over: review 53f, pkcs11 4) is opened again at the next operation, on whatever
token then has the label, logged in with the PIN. A token put in its place with the same label
(a USB token swapped, a token made in a shared SoftHSM2 token directory) was given the PIN at
that login, and the vault went on with it: it made the next keys and seal keys there (values
that token chose and may keep: its CKA_LOCAL and CKA_NEVER_EXTRACTABLE are its own word), so
a broker's next secrets were sealed under a key the impostor holds. Fixed: the token's serial
number is kept from the first login; a token of the label with another serial gets no PIN
(the check is before C_Login) and every operation is a `VaultError` saying so, until the
token opened first is back.
"""

from __future__ import annotations

import ast
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

import troth
from tests.conftest import SoftHsm
from tests.support.hsm import vault_fixture
from tests.test_review64k_pkcs11 import _pair
from troth.crypto import KeyType, verify_signature
from troth.vault import KeyHandle, KeyPurpose, SealKey
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]


def _copyable(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is copyable" in r.getMessage()]


def test_pkcs11_1_signing_with_a_copyable_key_made_before_64f_warns_once(
    vault: Pkcs11Vault, caplog: pytest.LogCaptureFixture
) -> None:
    """pkcs11 1: a key made as troth made them before review 64f signs, and the vault says,
    once, that it is copyable and how to replace it."""
    key_id = os.urandom(16).hex()
    _pair(vault, key_id, f"troth:primary:{key_id}")
    handle = KeyHandle(vault.name, KeyType.ED25519, key_id)
    with caplog.at_level(logging.WARNING, logger="troth.vault.pkcs11"):
        for data in (b"one", b"two"):
            verify_signature(vault.public_key(handle), vault.sign(handle, data), data)
    (warned,) = _copyable(caplog)
    assert key_id in warned
    assert "rotate --compromised" in warned


def test_pkcs11_1_a_key_made_now_is_not_copyable_and_logs_nothing(
    vault: Pkcs11Vault, caplog: pytest.LogCaptureFixture
) -> None:
    """pkcs11 1: the warning is for old keys only (the one the vault makes now is not
    copyable, so a later vault signing with it says nothing)."""
    from pkcs11 import Attribute, ObjectClass

    handle = vault.generate(KeyType.P256, KeyPurpose.SIGNING)
    vault._objects.clear()  # as a later process: the key found in the token
    with caplog.at_level(logging.WARNING, logger="troth.vault.pkcs11"):
        vault.sign(handle, b"new")
    assert _copyable(caplog) == []
    private = vault._find(handle, ObjectClass.PRIVATE_KEY)
    with vault._lock:
        assert private[Attribute.COPYABLE] is False


def test_pkcs11_1_a_copyable_seal_key_made_before_64f_warns_once(
    vault: Pkcs11Vault, caplog: pytest.LogCaptureFixture
) -> None:
    """pkcs11 1, for seal keys: one made between reviews 53f and 64f (not modifiable, so no
    `is modifiable` warning, but copyable) seals and unseals, and the vault says, once, that
    it is copyable; one made now says nothing."""
    from pkcs11 import Attribute
    from pkcs11 import KeyType as P11KeyType

    key_id = os.urandom(16).hex()
    template = {
        Attribute.TOKEN: True,
        Attribute.ID: bytes.fromhex(key_id),
        Attribute.LABEL: f"troth-seal:{key_id}",
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.ENCRYPT: True,
        Attribute.DECRYPT: True,
        Attribute.WRAP: False,
        Attribute.UNWRAP: False,
        Attribute.MODIFIABLE: False,
    }
    with vault._lock:
        vault._session.generate_key(P11KeyType.AES, 256, template=template, store=True)
    old = SealKey(vault.name, key_id)
    new = vault.generate_seal_key()
    vault._objects.clear()  # as a later process: both found in the token
    with caplog.at_level(logging.WARNING, logger="troth.vault.pkcs11"):
        for key in (old, old, new):
            assert vault.unseal(key, vault.seal(key, b"secret", b"aad"), b"aad") == b"secret"
    (warned,) = _copyable(caplog)
    assert key_id in warned
    assert not [r for r in caplog.records if "is modifiable" in r.getMessage()]


_SWAPPED: Final = """
import sys
from pkcs11 import Attribute, ObjectClass, lib
from pkcs11.exceptions import UserAlreadyLoggedIn
from troth.crypto import KeyType
from troth.errors import VaultError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

module, pin = sys.argv[1], sys.argv[2]
vault = Pkcs11Vault(module, "real", pin)
handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
with vault._lock:
    vault._session.close()  # the session ends under the process, as a removed token's
vault._key = (vault._key[0], "impostor")  # the label now names another token
outcomes = []
for call in [lambda: vault.sign(handle, b"m")] + [vault.generate_seal_key] * 3:
    try:
        call()
        outcomes.append("done")
    except VaultError as exc:
        outcomes.append(str(exc))
token = lib(vault._key[0]).get_token(token_label="impostor")
try:
    with token.open(user_pin=pin) as session:
        made = len(list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})))
except UserAlreadyLoggedIn:  # the vault logged in to it
    made = -1
print(repr((outcomes, made)))
"""


def test_pkcs11_2_a_session_reopened_on_another_token_of_the_label_gives_it_no_pin(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """pkcs11 2: the session ends, and the label now names another token that takes the same
    PIN. SoftHSM2 lists only the tokens it found when the process loaded it, and fails to list
    its slots when one is deleted under the process, so both tokens are made first (in a token
    directory of the test's own, in a process of its own) and the label lookup is pointed at
    the second. The vault does not log in to it: it makes nothing there, and each operation
    says why."""
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(conf),
        "PYTHONPATH": str(Path(troth.__file__).parents[1]),
    }
    for label in ("real", "impostor"):
        init = ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "13579"]
        subprocess.run(
            [*init, "--pin", softhsm.pin],
            check=True,
            capture_output=True,
            env=env,
        )
    done = subprocess.run(
        [sys.executable, "-c", _SWAPPED, softhsm.module, softhsm.pin],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    outcomes, made = ast.literal_eval(done.stdout.strip())
    assert "SessionHandleInvalid" in outcomes[0]  # the operation that finds it ended
    assert all("another token" in outcome for outcome in outcomes[1:]), outcomes
    assert made == 0
