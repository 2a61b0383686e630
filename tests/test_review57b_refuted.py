"""Review 57b, the vault with a real SoftHSM2 token and the software vault: attacks tried that
failed (the code was right). Each test is a real attempt that fails if the defence it names
breaks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import NOW, SoftHsm
from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.support.hsm import token_keys, vault_fixture  # noqa: F401  (fixture)
from troth.crypto import KeyType, verify_signature
from troth.errors import ConfigError, TrothError
from troth.identity import verify_history, verify_signed_by
from troth.node import init_node, open_node
from troth.node.rekey import rekey_vault
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault


@pytest.mark.parametrize("key_type", [KeyType.ED25519, KeyType.P256])
def test_a_token_key_was_never_extractable_and_takes_no_other_name(
    vault: Pkcs11Vault, key_type: KeyType
) -> None:
    """What the token says of an identity's private key: sensitive and never extractable from
    its creation (CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE: not a key imported or once
    readable), private, able to sign only (no derive, decrypt or unwrap), not modifiable. A
    session with the PIN (another program on the token) asks C_CopyObject for a copy under
    another identity's key label (one identity's key used under another's name: review 55d
    tried the other attributes): refused."""
    from pkcs11 import Attribute, ObjectClass

    private = vault._find(vault.generate(key_type, KeyPurpose.PRIMARY), ObjectClass.PRIVATE_KEY)
    wanted = {
        Attribute.SENSITIVE: True,
        Attribute.ALWAYS_SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.NEVER_EXTRACTABLE: True,
        Attribute.PRIVATE: True,
        Attribute.SIGN: True,
        Attribute.DERIVE: False,
        Attribute.DECRYPT: False,
        Attribute.UNWRAP: False,
        Attribute.MODIFIABLE: False,
    }
    other = vault.generate(key_type, KeyPurpose.SIGNING).key_id
    with vault._lock:
        assert {attribute: private[attribute] for attribute in wanted} == wanted
        with pytest.raises(vault._errors.PKCS11Error):
            private.copy({Attribute.LABEL: f"troth:signing:{other}"})


def test_a_wrong_pin_is_a_typed_error_naming_neither_pin(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong PIN in the node's PIN variable: the CLI answers ConfigError (exit 3), in text
    and JSON, with no traceback and neither the PIN given nor the token's; node.json holds the
    PIN variable's name, not the PIN."""
    softhsm.init_node("hsm", monkeypatch)
    run("identity", "create", "agent", "--node", "hsm")
    wrong = "86420135"
    monkeypatch.setenv("TEST_HSM_PIN", wrong)
    text = run("identity", "show", "agent", "--node", "hsm", code=3)
    answer = json.loads(run("identity", "show", "agent", "--node", "hsm", "--json", code=3).stdout)
    assert answer["error"] == "ConfigError"
    assert "PinIncorrect" in answer["message"]
    for said in (text.output, text.stderr, json.dumps(answer)):
        assert wrong not in said
        assert softhsm.pin not in said
        assert "Traceback" not in said
    with pytest.raises(ConfigError) as refused:
        Pkcs11Vault(softhsm.module, softhsm.token_label, wrong)
    assert wrong not in str(refused.value) + repr(refused.value)
    config = json.loads((troth_home / "nodes" / "hsm" / "node.json").read_text())
    assert config["pin_env"] == "TEST_HSM_PIN"  # its name, not its value
    assert softhsm.pin not in json.dumps(config)


# a token whose files are removed under an open vault (a USB token pulled, a network HSM's
# partition gone): argv = module; its own SoftHSM2 configuration (the session's token untouched)
_REMOVED = """
import glob, os, shutil, subprocess, sys, tempfile
root = tempfile.mkdtemp(prefix="troth-57b-")
os.mkdir(root + "/tokens")
open(root + "/conf", "w").write(
    f"directories.tokendir = {root}/tokens\\nobjectstore.backend = file\\nlog.level = ERROR\\n"
)
os.environ["SOFTHSM2_CONF"] = root + "/conf"
subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "gone", "--so-pin",
                "13579", "--pin", "2468"], check=True, capture_output=True)
from troth.crypto import KeyType
from troth.errors import TrothError
from troth.vault import KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault
vault = Pkcs11Vault(sys.argv[1], "gone", "2468")
handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
vault.sign(handle, b"before")
seal = vault.generate_seal_key()
for token in glob.glob(root + "/tokens/*"):
    shutil.rmtree(token)
for name, call in (
    ("sign", lambda: vault.sign(handle, b"after")),
    ("public_key", lambda: vault.public_key(handle)),
    ("generate", lambda: vault.generate(KeyType.P256, KeyPurpose.SIGNING)),
    ("seal", lambda: vault.seal(seal, b"x", b"")),
    ("retire", lambda: vault.retire(handle, KeyPurpose.SIGNING)),
):
    try:
        call()
        print(name, "done")
    except TrothError as exc:
        print(name, type(exc).__name__)
shutil.rmtree(root)
"""


def test_a_token_removed_under_an_open_vault_fails_each_call_with_a_typed_error(
    softhsm: SoftHsm,
) -> None:
    """The token's objects gone mid-run: every call after it fails with troth's VaultError or
    KeyNotFound, never a python-pkcs11 exception or a signature."""
    done = subprocess.run(
        [sys.executable, "-c", _REMOVED, softhsm.module],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answers = dict(line.split() for line in done.stdout.splitlines())
    assert set(answers) == {"sign", "public_key", "generate", "seal", "retire"}
    assert set(answers.values()) <= {"VaultError", "KeyNotFound"}, answers


def test_threads_sign_on_one_token_while_others_make_and_destroy_keys(
    softhsm: SoftHsm, vault: Pkcs11Vault
) -> None:
    """Two vault objects over the process's one session (a node and a script in it): threads
    signing with two identities' keys while another makes and destroys keys get every
    signature valid, each under its own key, and no error."""
    second = Pkcs11Vault(softhsm.module, softhsm.token_label, softhsm.pin)
    keys = [vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)]
    keys.append(second.generate(KeyType.P256, KeyPurpose.SIGNING))
    publics = [vault.public_key(keys[0]), second.public_key(keys[1])]
    failed: list[BaseException] = []

    def signs(which: int) -> None:
        owner = (vault, second)[which]
        try:
            for turn in range(25):
                message = f"{which}:{turn}".encode()
                verify_signature(publics[which], owner.sign(keys[which], message), message)
        except BaseException as exc:
            failed.append(exc)

    def churns() -> None:
        try:
            for _ in range(5):
                second.delete(second.generate(KeyType.ED25519, KeyPurpose.SIGNING))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=signs, args=(n,)) for n in (0, 1)]
    threads.append(threading.Thread(target=churns))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        second.close()
    assert not failed, failed
    assert not any(thread.is_alive() for thread in threads)


def test_a_copy_from_before_a_rekey_and_recovery_rotation_opens_nothing(
    troth_home: Path,
) -> None:
    """The recovery docs/vault.md prescribes (rekey, then rotate --compromised): a node.db
    copied before it and put back after it opens nothing, so the deleted keys it holds sign
    nothing (without the rekey they do: tests/test_review57b_restore.py)."""
    init_node("laptop")
    path = node_db(troth_home, "laptop")
    with open_node("laptop") as node:
        node.identities.create(now=NOW, name="courier")
        node.identities.signer("courier", now=NOW).sign(b"before")
    copy_db(path, troth_home / "copy.db")
    rekey_vault("laptop", home=troth_home)
    with open_node("laptop") as node:
        node.identities.rotate("courier", now=NOW + 10, compromised=True)
    restore_db(path, troth_home / "copy.db")
    with pytest.raises(TrothError, match="does not open this vault"), open_node("laptop"):
        pass


def test_two_processes_rotating_one_token_identity_at_once_leave_one_history_and_no_key(
    softhsm: SoftHsm, troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two CLI processes rotate one identity of a PKCS#11 node at the same moment (one a
    recovery rotation): both succeed one after the other (no fork, no rotation lost), the
    history verifies with every change, the node signs under it, and the token is left with
    the current and next key only: every key the two retired is destroyed, none orphaned."""
    softhsm.init_node("hsm", monkeypatch)
    with open_node("hsm") as node:
        node.identities.create(now=NOW, name="agent")
        node.identities.signer("agent", now=NOW).sign(b"m")  # a signing key too
        before = token_keys(node)
    rotate = ["identity", "rotate", "agent", "--node", "hsm"]
    commands = [rotate, [*rotate, "--compromised"]]
    racing = [
        subprocess.Popen(
            [sys.executable, "-m", "troth.cli.main", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    for process in racing:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    with open_node("hsm") as node:
        now = int(time.time())
        history = verify_history(node.identities.export("agent"), now=now)
        assert history.change_count == 4  # 1 + 1 + 2, in either order
        signer = node.identities.signer("agent", now=now)
        verify_signed_by(history, signer.attestation, b"m", signer.sign(b"m"), at=now)
        assert token_keys(node) == before  # current, next and the signing key just made
