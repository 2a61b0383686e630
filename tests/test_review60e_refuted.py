"""Review 60e: attacks on key custody that did not work ("private keys live in a vault and are
never readable by the agent"). Each test is a real attempt that fails if the defence breaks."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.cli import run
from tests.support.hsm import vault_fixture
from troth.crypto import KeyType
from troth.errors import ConfigError, StorageError, VaultError
from troth.identity.signer import Signer
from troth.node import Node
from troth.node.node import init_node, open_node
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose, SoftwareVault
from troth.vault.ephemeral import EphemeralKey, VaultDhKey
from troth.vault.pkcs11 import Pkcs11Vault

__all__ = ["vault_fixture"]

NOW = 1_800_000_000
_KEK = bytes(range(100, 132))


def _spellings(secret: bytes) -> list[str]:
    """How key bytes could show in text: hex (either case), and the bytes' repr."""
    return [secret.hex(), secret.hex().upper(), repr(secret)[2:-1]]


def _shows(text: str, secrets: list[bytes]) -> bool:
    return any(spelling in text for secret in secrets for spelling in _spellings(secret))


def _raw(vault: SoftwareVault, key_id: str) -> bytes:
    return vault._cache[key_id].private_bytes()  # white-box: the bytes searched for


@pytest.fixture(name="agent")
def agent_fixture(troth_home: Path) -> Iterator[Node]:
    """A software node with identity `agent` and its signing key made at NOW."""
    init_node("n")
    with open_node("n") as node:
        node.identities.create(now=NOW, name="agent")
        node.identities.purpose_key("agent", KeyPurpose.SIGNING, now=NOW)
        yield node


def test_no_text_or_copy_of_a_vault_signer_or_key_object_holds_key_bytes(agent: Node) -> None:
    """repr and str of everything that holds a key (the vault, a signer, its handle, a key
    batch, a channel's static and ephemeral keys) name no key bytes nor the KEK; none of them
    pickles (a pickle would carry the keys out of the process), and a copy shares the vault's
    keys rather than writing them anywhere."""
    vault = agent.vault
    assert isinstance(vault, SoftwareVault)
    signer = agent.identities.signer("agent", now=NOW)
    channel = vault.generate(KeyType.X25519, KeyPurpose.SECURE_CHANNEL)
    static, ephemeral = VaultDhKey(vault, channel), EphemeralKey()
    secrets = [_raw(vault, key_id) for key_id in vault._cache]
    secrets += [ephemeral._key.private_bytes(), (agent.path / "vault.key").read_bytes()]
    objects = [vault, signer, signer.handle, vault.key_batch(), static, ephemeral]
    objects += [ephemeral._key, vault._cache[signer.handle.key_id]]
    for obj in objects:
        assert not _shows(repr(obj) + str(obj), secrets), obj
    for obj in (vault, signer, static, ephemeral, ephemeral._key):
        with pytest.raises(TypeError, match="pickle"):
            pickle.dumps(obj)
    with pytest.raises(TypeError, match="pickle"):
        copy.deepcopy(signer)


def test_a_failed_unseal_carries_no_key_bytes_in_its_traceback(tmp_path: Path) -> None:
    """A row tampered with, cut short, or read under another KEK: the VaultError and the
    whole traceback printed for it (TROTH_DEBUG) hold neither the KEK nor the key, and chain
    no exception of the AEAD (whose arguments could)."""
    db = SqliteDatabase(tmp_path / "node.db")
    try:
        vault = SoftwareVault(SqliteKeyStore(db), _KEK)
        handle = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
        secrets = [_KEK, _raw(vault, handle.key_id)]
        (sealed,) = db.fetch_one("SELECT sealed FROM vault_keys")
        for damaged in (sealed[:-1] + bytes([sealed[-1] ^ 1]), sealed[:20]):
            db.execute("UPDATE vault_keys SET sealed = ?", (damaged,))
            with pytest.raises(VaultError) as caught:
                SoftwareVault(SqliteKeyStore(db), _KEK).sign(handle, b"data")
            text = "".join(traceback.format_exception(caught.value))
            assert "failed to unseal" in text
            assert caught.value.__cause__ is None
            assert caught.value.__suppress_context__
            assert not _shows(text, secrets)
    finally:
        db.close()


def test_a_wrong_vault_key_is_not_echoed_in_json_errors(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node keyed by TROTH_VAULT_KEY, opened with another key, and with a malformed one (the
    right key cut by a digit): `--json` and stderr name neither key."""
    right, wrong = bytes(range(32)), bytes(range(1, 33))
    monkeypatch.setenv("TROTH_VAULT_KEY", right.hex())
    run("node", "create", "n")
    for given, code in ((wrong.hex(), 3), (right.hex()[:-1], 3)):
        monkeypatch.setenv("TROTH_VAULT_KEY", given)
        result = run("identity", "list", "--node", "n", "--json", code=code)
        text = result.stdout + result.stderr
        assert '"ok": false' in result.stdout
        assert not _shows(text, [right, wrong])
        assert given not in text


def test_a_vault_closed_with_its_node_signs_nothing_from_its_cache(agent: Node) -> None:
    """The unsealed keys stay in the closed vault's cache (Python cannot zero them), but a
    signer kept past its node's close signs nothing with them, nor reads a public key."""
    signer: Signer = agent.identities.signer("agent", now=NOW)
    primary = agent.identities.find("agent").primary_key
    agent.close()
    assert signer.handle.key_id in agent.vault._cache  # type: ignore[attr-defined]
    with pytest.raises(StorageError, match="closed"):
        signer.sign(b"a trace record")
    with pytest.raises(StorageError, match="closed"):
        agent.vault.public_key(KeyHandle.parse(primary))


def test_rotations_and_renewals_leave_no_key_behind(agent: Node) -> None:
    """troth has no command that deletes an identity; what retires keys is a renewal and a
    rotation (plain and compromised): after each, the vault holds exactly the identity's keys
    in use (its current and next primary keys and its live purpose keys), none it retired."""
    identities = agent.identities
    ttl = identities.purpose_key_ttl

    def rows() -> int:
        return len(agent.db.fetch_all("SELECT key_id FROM vault_keys"))

    identities.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=NOW)
    assert rows() == 4
    identities.purpose_key("agent", KeyPurpose.SIGNING, now=NOW + ttl - 3600)  # renewed
    identities.purpose_key("agent", KeyPurpose.SECURE_CHANNEL, now=NOW + ttl + 10)  # expired
    assert rows() == 5  # the replaced channel key kept a grace (review 69t, chkeys 1)
    identities.rotate("agent", now=NOW + ttl + 20)
    assert rows() == 2  # the purpose keys go with the old primary key (the kept one too)
    identities.purpose_key("agent", KeyPurpose.SIGNING, now=NOW + ttl + 30)
    identities.rotate("agent", now=NOW + ttl + 40, compromised=True)
    local = identities.find("agent")
    assert local.next_key is not None
    stored = {f"{n:016x}" for (n,) in agent.db.fetch_all("SELECT key_id FROM vault_keys")}
    assert stored == {KeyHandle.parse(text).key_id for text in (local.primary_key, local.next_key)}


def test_a_wrong_pin_is_named_nowhere_in_the_error(softhsm: SoftHsm) -> None:
    """A PIN the token refuses (or one other than the PIN this process's session was opened
    with): ConfigError, and neither its text nor the traceback with its causes names the PIN."""
    pin = "975319753197531"
    with pytest.raises(ConfigError) as caught:
        Pkcs11Vault(softhsm.module, softhsm.token_label, pin).close()
    text = "".join(traceback.format_exception(caught.value))
    assert pin not in text
    assert softhsm.pin not in text


_TWO_TOKENS = """
import os, subprocess, sys
util, conf, module = sys.argv[1:4]
os.environ["SOFTHSM2_CONF"] = conf
for _ in range(2):
    subprocess.run([util, "--init-token", "--free", "--label", "twin", "--so-pin", "13579",
                    "--pin", "2468"], check=True, capture_output=True)
from troth.errors import ConfigError
from troth.vault.pkcs11 import Pkcs11Vault
try:
    Pkcs11Vault(module, "twin", "2468")
except ConfigError as exc:
    print(exc)
"""


def test_two_tokens_of_one_label_are_refused_not_one_picked(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """A second token given the node's token label (another user's, on a shared HSM or a
    SoftHSM2 configuration): the open is refused, ConfigError, rather than one of them used
    (whose keys the node would then sign with, or make keys in). In a process of its own:
    a loaded module lists only the tokens there were when it was loaded."""
    import shutil

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    util = shutil.which("softhsm2-util")
    assert util is not None
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", _TWO_TOKENS, util, str(conf), softhsm.module],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    # with no serial recorded to tell them apart, neither is given the PIN (review 68d, pkcs11 1
    # names both serials instead of python-pkcs11's MultipleTokensReturned)
    assert "2 PKCS#11 tokens are labelled 'twin'" in done.stdout, (done.stdout, done.stderr)
    assert "not logged in to any" in done.stdout, done.stdout


def test_a_pin_session_wraps_no_token_key_out(vault: Pkcs11Vault) -> None:
    """A session with the PIN makes an AES wrapping key of its own and asks the token to wrap
    troth's keys with it (C_WrapKey: the key's value out, encrypted under a key it knows): the
    token refuses each, an identity's Ed25519 and P-256 private keys and a seal key
    (KeyUnextractable: troth makes them with CKA_EXTRACTABLE false)."""
    from pkcs11 import Attribute, Mechanism, ObjectClass
    from pkcs11 import KeyType as P11KeyType
    from pkcs11.exceptions import KeyUnextractable

    handles = [vault.generate(t, KeyPurpose.PRIMARY) for t in (KeyType.ED25519, KeyType.P256)]
    objects = [vault._find(h, ObjectClass.PRIVATE_KEY) for h in handles]
    objects.append(vault._seal_object(vault.generate_seal_key()))
    template = {Attribute.TOKEN: False, Attribute.WRAP: True, Attribute.EXTRACTABLE: True}
    with vault._lock:
        wrapping = vault._session.generate_key(P11KeyType.AES, 256, template=template)
        for obj in objects:
            for mechanism in (Mechanism.AES_KEY_WRAP, Mechanism.AES_KEY_WRAP_PAD):
                with pytest.raises(KeyUnextractable):
                    wrapping.wrap_key(obj, mechanism=mechanism)
