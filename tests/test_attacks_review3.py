"""Adversarial review, round 3: trace exports, vault, storage (attacks that must fail). Each
failed on main before its fix: a key deleted by another spelling of its id kept signing from
the cache, a handle naming another vault signed with this vault's key, and a token key retired
by one process kept signing in another broker over the same database."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from tests.conftest import NOW
from tests.support.leases import make_world, open_broker
from troth.crypto import KeyType
from troth.errors import KeyNotFound
from troth.secrets import AllowListPolicy
from troth.storage import SqliteDatabase, SqliteKeyStore
from troth.vault import KeyHandle, KeyPurpose, SoftwareVault

KEK = bytes(range(32))


@pytest.fixture
def vault(tmp_path: Path) -> SoftwareVault:
    return SoftwareVault(SqliteKeyStore(SqliteDatabase(tmp_path / "v.db")), KEK)


def test_a_key_id_has_one_spelling_and_its_deletion_reaches_the_cache(
    vault: SoftwareVault,
) -> None:
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    alias = KeyHandle(handle.vault, handle.key_type, "0x" + handle.key_id.upper())
    with pytest.raises(
        KeyNotFound, match=r"no key software:ed25519:0x"
    ):  # the other spelling names no key: nothing is deleted
        vault.delete(alias)
    assert vault.sign(handle, b"still the key's")
    vault.delete(handle)  # the one spelling deletes it everywhere, this process included
    with pytest.raises(KeyNotFound, match=r"no key software:ed25519"):
        vault.sign(handle, b"signed after its deletion")


def test_a_handle_of_another_vault_does_not_sign_here(vault: SoftwareVault) -> None:
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    foreign = KeyHandle("another-vault", handle.key_type, handle.key_id)
    with pytest.raises(KeyNotFound, match=r"belongs to the another\-vault vault"):
        vault.sign(foreign, b"x")


def test_a_retired_token_key_stops_signing_in_every_broker_of_the_node(tmp_path: Path) -> None:
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None}})
    config = {"scopes": ["orders:read"], "ttl": 120, "max_ttl": 600, "audience": "payments"}
    _db, serving = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    serving.put_secret("payments", "token", config, b"", now=NOW)
    before = serving.issue(world.credential_a(), "payments", now=NOW).credential.reveal()["token"]
    # the operator rotates the (say, leaked) token key from another process on the same node
    _db2, operator = open_broker(tmp_path / "node.db", now=NOW, policy=policy)
    new_kid = operator.keys.rotate_signing_key(NOW + 1)
    # in force at the serving broker's next token (review 48f, tokens 1)
    issued = serving.issue(world.credential_a(), "payments", now=NOW + 1)
    after = issued.credential.reveal()["token"]
    assert jwt.get_unverified_header(str(before))["kid"] != new_kid
    assert jwt.get_unverified_header(str(after))["kid"] == new_kid
