"""Review 48k, pkcs11 3 (found by review 48d, fixed here): the keys a PKCS#11 node destroys in
its token are keys it retired there. node.db's `retired_keys` and `purpose_keys` rows are no
proof: a writer of node.db without the PIN writes them too (docs/vault.md, "PKCS#11 vault").
The planted `retired_keys` row itself: tests/test_review48d_pkcs11.py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import (
    token_vault,
    vault_fixture,  # noqa: F401  (the fixture `vault`)
)
from tests.test_review47f_restart import rotate
from tests.test_vault_rekey import node_path
from troth.crypto import KeyType
from troth.errors import KeyNotFound, TrothError
from troth.identity.service import PURPOSE_KEY_TTL
from troth.node import open_node
from troth.storage import SqliteDatabase
from troth.vault import KeyHandle, KeyPurpose
from troth.vault.pkcs11 import Pkcs11Vault

pytestmark = pytest.mark.hsm


def write_node_db(home: Path, sql: str, params: tuple[object, ...]) -> None:
    """What a writer of node.db without the PIN does (a restored or edited file)."""
    db = SqliteDatabase(node_path(home, "hsm") / "node.db")
    try:
        db.execute(sql, params)
    finally:
        db.close()


def plant_row(home: Path, text: str) -> None:
    write_node_db(home, "INSERT INTO retired_keys VALUES (?)", (text,))


def markers(vault: Pkcs11Vault, handle: KeyHandle) -> int:
    """How many retirement objects the token holds for `handle`."""
    import pkcs11
    from pkcs11 import Attribute

    query = {
        Attribute.CLASS: pkcs11.ObjectClass.DATA,
        Attribute.LABEL: "troth-retired:" + handle.key_id,
    }
    with vault._lock:
        return len(list(vault._session.get_objects(query)))


def still_signs(handle: KeyHandle) -> bool:
    with open_node("hsm") as node:
        try:
            node.vault.sign(handle, b"m")
        except TrothError:
            return False
        return True


@pytest.mark.parametrize("which", ["primary", "next", "signing"])
def test_a_purpose_key_record_pointed_at_an_identity_key_does_not_destroy_it(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path, which: str
) -> None:
    """Review 48d, pkcs11 3, its second form. A writer of node.db without the PIN points an
    identity's signing key record at another identity's current key (or its committed next
    key, the one place its public value is kept); at its renewal (within a day of expiry, at
    the next use) the node retired the key the record named, in the token: the other identity
    lost for good. Now `retire` asks the token: the key's label, set by the PIN holder when it
    was made, says it is an identity key, not a signing key, and nothing is retired. Pointed
    at the other identity's signing key (whose label says signing), the record's attestation
    is not of that key (`owned_purpose_keys`): nothing is retired either (it was, and the
    other identity failed to sign until its own renewal or rotation)."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        victim = node.identities.create(now=now, name="victim")
        victim_signing = node.identities.signer("victim", now=now).handle
        node.identities.create(now=now, name="agent")
        node.identities.signer("agent", now=now).sign(b"made its signing key")
        agent = node.identities.find("agent").identifier
    target = {
        "primary": victim.primary_key,
        "next": victim.next_key,
        "signing": victim_signing,
    }[which]
    write_node_db(
        troth_home,
        "UPDATE purpose_keys SET key_handle = ? WHERE identifier = ? AND purpose = ?",
        (str(target), agent, int(KeyPurpose.SIGNING)),
    )
    later = now + PURPOSE_KEY_TTL - 3600
    with open_node("hsm") as node:
        renewed = node.identities.signer("agent", now=later)  # the renewal
        assert renewed.handle != target
        node.identities.forget_retired()
        assert node.identities.store.retired_keys(16) == []  # nothing was retired
        node.vault.sign(target, b"still in the token")
        node.identities.signer("victim", now=now + 60).sign(b"the victim still signs")
        node.identities.rotate("victim", now=later + 1)  # and rotates (its next key is there)
    assert still_signs(target) is (which == "next")  # the next key is the primary now


def test_a_rotation_retires_only_the_purpose_keys_its_identity_attested(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """A rotation retires every purpose key of the identity its records name: a record
    pointed at another identity's signing key (its label says signing, so no label check
    stops it) got that key destroyed. Now only a key the record's attestation names, under
    this identity, is retired."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        node.identities.create(now=now, name="victim")
        target = node.identities.signer("victim", now=now).handle
        node.identities.create(now=now, name="agent")
        own = node.identities.signer("agent", now=now).handle
        agent = node.identities.find("agent").identifier
    write_node_db(
        troth_home,
        "UPDATE purpose_keys SET key_handle = ? WHERE identifier = ? AND purpose = ?",
        (str(target), agent, int(KeyPurpose.SIGNING)),
    )
    with open_node("hsm") as node:
        node.identities.rotate("agent", now=now + 1)
        assert node.identities.store.retired_keys(16) == []
        node.identities.signer("victim", now=now + 2).sign(b"the victim still signs")
    assert still_signs(target)
    assert still_signs(own)  # no record names it now: left, an orphan (docs/vault.md)


def test_a_proof_made_without_the_pin_or_for_another_key_deletes_nothing(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """The proof in a record must be one the token holds, in a private object, for that
    key: a public data object a session without the PIN made with the retirement label and a
    value of its choosing, a random proof, and the genuine proof of another key's retirement
    (a record read from node.db) all leave the key, and their records go."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        primary = node.identities.create(now=now, name="agent").primary_key
        other = node.identities.create(now=now, name="other").primary_key
    done = subprocess.run(
        [sys.executable, "-c", _PLANT, softhsm.module, softhsm.token_label, primary.key_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.split() == ["planted", "refused"], done.stderr
    with token_vault(softhsm) as vault:
        genuine = vault.retire(other, KeyPurpose.PRIMARY)
        assert markers(vault, primary) == 1  # the public one planted (seen with the PIN)
    for proof in ("ab" * 16, "00" * 16, genuine, "not hex", ""):
        plant_row(troth_home, f"{primary}#{proof}")
    with open_node("hsm") as node:
        assert node.identities.forget_retired() == 5
        assert node.identities.store.retired_keys(16) == []
        node.identities.signer("agent", now=now).sign(b"still signs")
        node.identities.rotate("agent", now=now + 1)
    assert still_signs(other)


# A PKCS#11 application on the token without the user PIN (a public session, PKCS#11 v3.0
# §5.6): it creates a public data object as `retire` makes them, and tries a private one.
_PLANT = """
import sys
import pkcs11
from pkcs11 import Attribute, ObjectClass
lib = pkcs11.lib(sys.argv[1])
token = lib.get_token(token_label=sys.argv[2])
marker = {Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
          Attribute.LABEL: "troth-retired:" + sys.argv[3], Attribute.APPLICATION: "troth",
          Attribute.VALUE: bytes.fromhex("ab" * 16)}
with token.open(rw=True) as session:
    session.create_object({**marker, Attribute.PRIVATE: False})
    print("planted")
    try:
        session.create_object({**marker, Attribute.PRIVATE: True})
        print("created")
    except pkcs11.exceptions.PKCS11Error:
        print("refused")
"""


def test_a_rotation_killed_before_its_commit_leaves_no_usable_proof(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """Crash safety. A rotation killed after `retire` made its object in the token but before
    the commit (`identity.rotate.before-commit`) leaves the old key current with a retirement
    object whose proof no commit recorded: a row then planted naming the key (with no proof,
    or any) deletes nothing, and the next rotation retires it anew and deletes it, with every
    retirement object of it."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        primary = node.identities.create(now=now, name="agent").primary_key
    rotate(crash="identity.rotate.before-commit")
    with open_node("hsm") as node:
        assert node.identities.find("agent").primary_key == str(primary)  # rolled back
        assert node.identities.store.retired_keys(16) == []
    with token_vault(softhsm) as vault:
        assert markers(vault, primary) == 1  # made before the kill
    plant_row(troth_home, str(primary))
    plant_row(troth_home, f"{primary}#{'cd' * 16}")
    with open_node("hsm") as node:
        assert node.identities.forget_retired() == 2
    assert still_signs(primary)
    rotate()
    assert not still_signs(primary)
    with open_node("hsm") as node:
        assert node.identities.store.retired_keys(16) == []
    with token_vault(softhsm) as vault:
        assert markers(vault, primary) == 0  # the killed rotation's went with the key


def test_a_deletion_killed_halfway_is_finished_by_the_next_call(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """Crash safety, after the commit. Killed before the deletion
    (`identity.retired-keys.before-delete`), the record holds the proof and the next call
    deletes the key and its retirement object; killed after the key was destroyed but before
    its object was (the key gone, as another process's call leaves it), the next call drops
    the object and the record: nothing stays in the token, nothing recorded."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        first = node.identities.create(now=now, name="agent").primary_key
    rotate(crash="identity.retired-keys.before-delete")
    with open_node("hsm") as node:
        (record,) = node.identities.store.retired_key_records(16)
        assert record.startswith(f"{first}#")
        assert node.identities.forget_retired() == 1
        second = KeyHandle.parse(node.identities.find("agent").primary_key)
    assert not still_signs(first)
    rotate(crash="identity.retired-keys.before-delete")
    with token_vault(softhsm) as vault:
        assert markers(vault, first) == 0
        assert markers(vault, second) == 1
        for kind in (vault._p11.ObjectClass.PRIVATE_KEY, vault._p11.ObjectClass.PUBLIC_KEY):
            vault._find(second, kind).destroy()  # the half a killed `delete_retired` did
    with open_node("hsm") as node:
        assert node.identities.forget_retired() == 1
        assert node.identities.store.retired_key_records(16) == []
    with token_vault(softhsm) as vault:
        assert markers(vault, second) == 0


def test_no_key_is_deleted_without_a_proof(vault: Pkcs11Vault) -> None:
    """No key is deleted without a proof: a signing key was (the secrets broker recorded its
    retired token keys by handle, until review 48r, pkcs11 1). An identity key, and a key made
    before review 48k (labelled `troth:<key id>`, what it is for unknown), is retired as an
    identity key only (its retirement as a purpose key is refused: a record pointed at it
    does not make one)."""
    signing = vault.generate(KeyType.P256, KeyPurpose.SIGNING)
    primary = vault.generate(KeyType.ED25519, KeyPurpose.PRIMARY)
    older = _made_before(vault)
    with pytest.raises(KeyNotFound):
        vault.delete_retired(signing, None)
    vault.sign(signing, b"kept")
    for key in (primary, older):
        with pytest.raises(KeyNotFound):
            vault.delete_retired(key, None)
        with pytest.raises(KeyNotFound):
            vault.retire(key, KeyPurpose.SIGNING)
        vault.sign(key, b"kept")
        proof = vault.retire(key, KeyPurpose.PRIMARY)
        vault.delete_retired(key, proof)
        with pytest.raises(KeyNotFound):
            vault.public_key(key)
        assert markers(vault, key) == 0


def _made_before(vault: Pkcs11Vault) -> KeyHandle:
    """A key pair labelled as `generate` labelled them before review 48k."""
    import pkcs11
    from pkcs11 import Attribute
    from pkcs11.util.ec import encode_named_curve_parameters

    key_id = "cd" * 16
    common = {
        Attribute.TOKEN: True,
        Attribute.ID: bytes.fromhex(key_id),
        Attribute.LABEL: "troth:" + key_id,
        Attribute.PRIVATE: True,
    }
    with vault._lock:
        vault._session.generate_keypair(
            pkcs11.KeyType.EC_EDWARDS,
            mechanism=pkcs11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            public_template={
                **common,
                Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112"),
                Attribute.VERIFY: True,
            },
            private_template={**common, Attribute.SENSITIVE: True, Attribute.SIGN: True},
            store=True,
        )
    return KeyHandle(vault.name, KeyType.ED25519, key_id)


def test_a_broker_token_key_record_pointed_at_an_identity_key_does_not_destroy_it(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """Review 48k, pkcs11 4, the same attack through the secrets broker: its token keys are
    keys of the node's vault, named by handle in `secret_signing_keys`, and a compromised
    token key rotation (or the prune of retired ones) deletes the older ones from the vault
    itself (`vault.delete`). A writer of node.db without the PIN points a retired token key's
    record at an identity's current key; the next `troth secret rotate-key --compromised`
    destroyed it. Now the token destroys an identity key only once it retired it (or for
    the process that made it, undoing a rotation that failed): the broker's deletion is
    refused, its record dropped, and the identity signs on; the broker's own token keys (their
    label says signing) are deleted as before. Was a strict xfail (KeyNotFound at the sign)
    until `Pkcs11Vault.delete` refused."""
    from troth.secrets.keys import BrokerKeys
    from troth.secrets.store import SqliteSecretStore
    from troth.vault import SealingVault

    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        primary = node.identities.create(now=now, name="agent").primary_key
        assert isinstance(node.vault, SealingVault)
        keys = BrokerKeys(SqliteSecretStore(node.db), node.vault, key_type=KeyType.P256, now=now)
        keys.rotate_signing_key(now)  # one retired token key, one current
        store = SqliteSecretStore(node.db)
        (current,) = [KeyHandle.parse(k.handle) for k in store.signing_keys() if not k.retired_at]
    write_node_db(
        troth_home,
        "UPDATE secret_signing_keys SET handle = ? WHERE retired_at IS NOT NULL",
        (str(primary),),
    )
    with open_node("hsm") as node:
        assert isinstance(node.vault, SealingVault)
        keys = BrokerKeys(SqliteSecretStore(node.db), node.vault, key_type=KeyType.P256, now=now)
        keys.rotate_signing_key(now + 1, compromised=True)
        with pytest.raises(KeyNotFound):  # the broker's own token key: withdrawn, deleted
            node.vault.public_key(current)
        node.identities.forget_retired()
        assert node.identities.store.retired_keys(16) == []
        node.identities.signer("agent", now=now).sign(b"still signs")
        node.identities.rotate("agent", now=now + 2)


def test_a_planted_record_does_not_destroy_a_current_signing_key(
    softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, troth_home: Path
) -> None:
    """Review 48k, pkcs11 5 (fixed by review 48r, pkcs11 1). The secrets broker recorded its
    retired token keys (signing keys of the vault) by handle, with no proof, and a signing key
    was deleted without one: a `retired_keys` row planted naming an identity's current signing
    key got it destroyed, and the identity failed to sign until the key's renewal or a
    rotation. Now the broker retires its keys through `RetiringVault.retire`, with a proof,
    and the token deletes no key without one: the row is dropped, the key kept. Was a strict
    xfail (KeyNotFound at the sign)."""
    softhsm.init_node("hsm", monkeypatch)
    now = int(time.time())
    with open_node("hsm") as node:
        node.identities.create(now=now, name="agent")
        signing = node.identities.signer("agent", now=now).handle
    plant_row(troth_home, str(signing))
    with open_node("hsm") as node:
        assert node.identities.forget_retired() == 1
        assert node.identities.store.retired_key_records(16) == []
        node.identities.signer("agent", now=now + 60).sign(b"still signs")
    assert still_signs(signing)
