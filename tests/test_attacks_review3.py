"""Adversarial review, round 3: trace exports, vault, storage (attacks that must fail)."""

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


@pytest.mark.xfail(
    strict=True,
    reason="vault.delete finds the row by int(key_id, 16) but evicts the cache by the raw "
    "text: a non-canonical key id deletes the sealed row while the cached private key signs on",
)
def test_deleting_a_key_by_another_spelling_of_its_id_leaves_it_signing(
    vault: SoftwareVault,
) -> None:
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    alias = KeyHandle(handle.vault, handle.key_type, "0x" + handle.key_id.upper())
    try:
        vault.delete(alias)
    except KeyNotFound:
        return  # the other spelling names no key: nothing was deleted, nothing to keep
    # the delete succeeded: the key must be gone everywhere, this process included
    with pytest.raises(KeyNotFound):
        vault.sign(handle, b"signed after its deletion")


@pytest.mark.xfail(
    strict=True,
    reason="SoftwareVault._load consults its cache before _check_handle: a handle naming "
    "another vault signs with this vault's key",
)
def test_a_handle_of_another_vault_does_not_sign_here(vault: SoftwareVault) -> None:
    handle = vault.generate(KeyType.ED25519, KeyPurpose.SIGNING)
    foreign = KeyHandle("another-vault", handle.key_type, handle.key_id)
    with pytest.raises(KeyNotFound):
        vault.sign(foreign, b"x")


@pytest.mark.xfail(
    strict=True,
    reason="BrokerKeys.token_signer caches the signer per object and only the rotating object "
    "drops it: another broker over the same node database keeps signing with the retired key",
)
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
    issued = serving.issue(world.credential_a(), "payments", now=NOW + 2)
    after = issued.credential.reveal()["token"]
    assert jwt.get_unverified_header(str(before))["kid"] != new_kid
    assert jwt.get_unverified_header(str(after))["kid"] == new_kid
