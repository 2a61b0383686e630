"""Review 62d: attacks on the vaults that did not work ("private keys live in a vault, software or
an HSM via PKCS#11, and are never readable by the agent"). Each test is a real attempt that
fails if the defence breaks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import token_vault, vault_fixture
from tests.test_review62d_vault import readable_aes, readable_pair, swap_for_readable
from troth.cli.main import cli
from troth.crypto import KeyType, verify_signature
from troth.crypto.private import generate_private_key
from troth.errors import InvalidSignature, KeyNotFound, VaultError
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose, SealKey, SoftwareVault
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]

_ED25519_L = 2**252 + 27742317777372353535851937790883648493
"""The order of the Ed25519 base point (RFC 8032 §5.1)."""


def test_an_ed25519_signature_malleated_in_s_or_r_is_refused() -> None:
    """A second valid signature from one the key made: S + L (the same point equation, S not
    reduced) and R with its sign bit flipped (another encoding of a point, or none). pyca (OpenSSL)
    refuses S >= L and compares R's bytes, so an Ed25519 signature has one form, as a P-256 one
    has (low-s: tests/test_crypto.py)."""
    key = generate_private_key(KeyType.ED25519)
    signature = key.sign(b"a trace record")
    verify_signature(key.public_key, signature, b"a trace record")
    s = int.from_bytes(signature[32:], "little")
    flipped_r = bytearray(signature[:32])
    flipped_r[31] ^= 0x80
    for forged in (
        signature[:32] + (s + _ED25519_L).to_bytes(32, "little"),
        bytes(flipped_r) + signature[32:],
    ):
        with pytest.raises(InvalidSignature):
            verify_signature(key.public_key, forged, b"a trace record")


def test_a_key_the_token_generated_readable_then_made_sensitive_is_not_used(
    vault: Pkcs11Vault, softhsm: SoftHsm
) -> None:
    """Review 60e's guard against a key whose value a PIN session knows, tried with a key the
    token did generate (CKA_LOCAL true, which review 60e's swaps, made by C_CreateObject, lacked):
    generated readable, read, then made sensitive and not extractable, swapped in under a seal
    key's and a signing key's CKA_ID and labels. CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE
    stay false (the token sets them; a template claiming them is refused too), so the vault
    refuses both keys; it seals and signs nothing with a key the planter read (the public key
    it showed for the pair: review 62d, pkcs11 2)."""
    p11 = vault._p11
    attr = p11.Attribute
    claims = {attr.ALWAYS_SENSITIVE: True, attr.NEVER_EXTRACTABLE: True}
    readable = {attr.SENSITIVE: False, attr.EXTRACTABLE: True}
    with vault._lock, pytest.raises(p11.exceptions.PKCS11Error):  # no template says "always"
        vault._session.generate_key(p11.KeyType.AES, 256, template={**readable, **claims})

    seal_key = vault.generate_seal_key()
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    assert (
        len(swap_for_readable(vault, seal_key.key_id, readable_aes(vault, seal_key.key_id))) == 32
    )
    assert len(swap_for_readable(vault, handle.key_id, readable_pair(vault, handle.key_id))) == 32
    with token_vault(softhsm) as fresh:  # nothing cached: the token's objects as they are now
        with pytest.raises(VaultError, match="not generated in the token"):
            fresh.seal(seal_key, b"an upstream secret", b"aad")
        with pytest.raises(VaultError, match="not generated in the token"):
            fresh.sign(handle, b"a token the planter could sign offline")


def test_a_seal_key_and_a_key_pair_are_not_reached_by_each_others_handles(
    vault: Pkcs11Vault,
) -> None:
    """A seal key's id given as a key pair's handle, and a key pair's id as a seal key: the token
    is searched by object class and key type, so neither names the other's object (no signature
    by an AES key, no sealing with an Ed25519 one, no deletion of either)."""
    pair = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    seal_key = vault.generate_seal_key()
    as_pair = KeyHandle(vault.name, KeyType.ED25519, seal_key.key_id)
    as_seal = SealKey(vault.name, pair.key_id)
    for call in (
        lambda: vault.sign(as_pair, b"x"),
        lambda: vault.public_key(as_pair),
        lambda: vault.retire(as_pair, KeyPurpose.PRIMARY),
        lambda: vault.delete(as_pair),
        lambda: vault.seal(as_seal, b"x", b""),
        lambda: vault.delete_seal_key(as_seal),
    ):
        with pytest.raises(KeyNotFound):
            call()
    vault.sign(pair, b"both still there")
    vault.unseal(seal_key, vault.seal(seal_key, b"x", b""), b"")


def test_a_software_key_named_under_another_key_type_is_not_used(tmp_path: Path) -> None:
    """The software vault's side of review 62d, pkcs11 1: a handle naming a stored key under
    another type (an Ed25519 key as P-256 or X25519, an X25519 key as Ed25519), from the vault
    that cached the key and from a fresh one over the same node.db: `VaultError` for each use,
    never a signature or a shared secret by the key under a type it is not (the row's type and
    its AAD say what it is)."""
    db = SqliteDatabase(tmp_path / "node.db")
    kek = bytes(range(32))
    try:
        vault = SoftwareVault(SqliteKeyStore(db), kek)
        ed = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        dh = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
        peer = generate_private_key(KeyType.X25519).public_key
        crossed = [
            KeyHandle(vault.name, KeyType.P256, ed.key_id),
            KeyHandle(vault.name, KeyType.X25519, ed.key_id),
            KeyHandle(vault.name, KeyType.ED25519, dh.key_id),
        ]
        for user in (vault, SoftwareVault(SqliteKeyStore(db), kek)):
            for handle in crossed:
                uses: list[tuple[Any, tuple[Any, ...]]] = [
                    (user.public_key, (handle,)),
                    (user.sign, (handle, b"x")),
                    (user.dh, (handle, peer)),
                ]
                for use, args in uses:
                    with pytest.raises(VaultError, match="does not match its stored record"):
                        use(*args)
            verify_signature(user.public_key(ed), user.sign(ed, b"x"), b"x")  # still its own
    finally:
        db.close()


_PUBLIC_VALUES = {"--authority-pin"}
"""Options that name something secret-sounding but public: an authority's pin is its
identifier and public key, as `troth authority list` shows them."""


def _params(command: click.Command, path: str) -> Iterator[tuple[str, click.Parameter]]:
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _params(sub, f"{path} {name}")
    else:
        for param in command.params:
            yield path, param


def test_no_command_takes_a_pin_or_a_vault_key_on_its_command_line() -> None:
    """A PIN or vault key given as an argument is in every process listing (`ps`, /proc/PID/
    cmdline: readable by every local user) and the shell's history. Every option or argument of
    troth's CLI that names one (pin, key, password, passphrase, secret, value) takes the name of
    an environment variable or a file, never the value (`--pin-env`, `--new-key-env`,
    `--new-key-file`, `--value-file`), except what is public (`_PUBLIC_VALUES`) or names a kind
    (`--key-type`)."""
    secretish = re.compile(r"pin|kek|key|pass|secret|value", re.IGNORECASE)
    seen = []
    for path, param in _params(cli, "troth"):
        names = [*param.opts, param.name or ""]
        if not any(secretish.search(name) for name in names) or param.opts[0] in _PUBLIC_VALUES:
            continue
        if isinstance(param, click.Option) and param.is_flag:
            continue
        seen.append(param.opts[0])
        assert param.opts[0].endswith(("-env", "-file", "-type")), f"{path} {param.opts[0]}"
    assert {"--pin-env", "--new-key-env", "--new-key-file", "--value-file"} <= set(seen)
