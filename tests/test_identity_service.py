"""The identity service over real SQLite: create, rotate, import (append-only), purpose keys."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.histories import body_for, encode, sign_change
from troth.crypto import KeyType, sha256
from troth.crypto.private import generate_private_key
from troth.errors import ConflictError, IdentityError, IdentityFailure, NotFound
from troth.identity import IdentityService, decode_history, verify_history
from troth.node import Node, init_node, open_node
from troth.vault import KeyHandle, KeyPurpose


@pytest.fixture
def node(troth_home: Path) -> Iterator[Node]:
    init_node("n")
    with open_node("n") as node:
        yield node


def test_create_and_lookup(node: Node) -> None:
    service = node.identities
    local = service.create(now=NOW, name="alice")
    assert service.get("alice", now=NOW).identifier == local.identifier
    assert service.get(str(local.identifier), now=NOW).name == "alice"
    assert service.get(local.identifier.did, now=NOW).name == "alice"
    assert [r.name for r in service.list_local()] == ["alice"]
    with pytest.raises(NotFound):
        service.get("bob", now=NOW)
    with pytest.raises(ConflictError, match="exists"):
        service.create(now=NOW, name="alice")
    with pytest.raises(ValueError, match="invalid identity name"):
        service.create(now=NOW, name="Alice")


def test_create_many_is_atomic(node: Node) -> None:
    node.identities.create(now=NOW, name="batch-3")
    with pytest.raises(ConflictError):
        node.identities.create_many(5, now=NOW, name_prefix="batch")
    assert [r.name for r in node.identities.list_local()] == ["batch-3"]
    assert node.db.fetch_one("SELECT count(*) FROM vault_keys")[0] == 1
    created = node.identities.create_many(5, now=NOW, name_prefix="agent")
    assert len({c.identifier for c in created}) == 5


def test_rotation_keeps_identifier_and_retires_keys(node: Node) -> None:
    service = node.identities
    local = service.create(now=NOW, name="a", key_type=KeyType.P256)
    old_channel, _ = service.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW)
    rotated = service.rotate("a", now=NOW + 10, key_type=KeyType.ED25519)
    assert rotated.identifier == local.identifier
    assert rotated.identity.current_key.key_type is KeyType.ED25519
    assert len(verify_history(service.export("a"), now=NOW + 20).changes) == 2
    # the old primary key and the old purpose key are gone from the vault
    for handle in (local.primary_key, old_channel):
        with pytest.raises(Exception, match="no key"):
            node.vault.public_key(handle)
    new_channel, attested = service.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW + 20)
    assert new_channel != old_channel
    assert attested.identifier == local.identifier


def test_purpose_key_reused_until_near_expiry(node: Node) -> None:
    service = node.identities
    service.create(now=NOW, name="a")
    first, _ = service.purpose_key("a", KeyPurpose.SIGNING, now=NOW)
    again, _ = service.purpose_key("a", KeyPurpose.SIGNING, now=NOW + 3600)
    assert again == first
    later, verified = service.purpose_key(
        "a", KeyPurpose.SIGNING, now=NOW + service.purpose_key_ttl - 60
    )
    assert later != first
    assert verified.expires_at > NOW + service.purpose_key_ttl


def test_expired_key_rotation_rejected(troth_home: Path) -> None:
    init_node("short")
    with open_node("short") as node:
        service = IdentityService(node.vault, node.identities.store, primary_key_ttl=100)
        service.create(now=NOW, name="a")
        with pytest.raises(IdentityError) as caught:
            service.rotate("a", now=NOW + 101)
        assert caught.value.reason is IdentityFailure.KEY_OUTSIDE_VALIDITY
        assert len(decode_history(service.export("a"))) == 1


def test_import_is_append_only(node: Node) -> None:
    service = node.identities
    keys = [generate_private_key(KeyType.ED25519) for _ in range(3)]
    changes = [sign_change(body_for(keys[0], None, NOW - 100), keys[0], None)]
    for index in (1, 2):
        body = body_for(keys[index], sha256(changes[-1].body), NOW - 100 + index)
        changes.append(sign_change(body, keys[index], keys[index - 1]))
    service.import_history(encode(changes[:2]), now=NOW)
    service.import_history(encode(changes[:2]), now=NOW)  # same again: fine
    service.import_history(encode(changes), now=NOW)  # extension: stored
    digest = sha256(changes[0].body)
    assert node.identities.store.get_history(digest) == (encode(changes), 3)
    with pytest.raises(IdentityError) as caught:
        service.import_history(encode(changes[:2]), now=NOW)
    assert caught.value.reason is IdentityFailure.ROLLBACK
    other = generate_private_key(KeyType.ED25519)
    fork = [
        *changes[:2],
        sign_change(body_for(other, sha256(changes[1].body), NOW - 90), other, keys[1]),
    ]
    with pytest.raises(IdentityError) as caught:
        service.import_history(encode(fork), now=NOW)
    assert caught.value.reason is IdentityFailure.FORK
    assert node.identities.store.get_history(digest) == (encode(changes), 3)


def test_local_identity_cannot_be_extended_by_import(node: Node) -> None:
    local = node.identities.create(now=NOW, name="mine")
    intruder = generate_private_key(KeyType.ED25519)
    stolen = node.vault  # the attacker would need our key; simulate a signed extension by us
    body = body_for(intruder, local.identity.current_change_hash, NOW + 1)
    encoded = body.encode()
    from troth.identity import SignedChange

    signed = SignedChange(encoded, intruder.sign(encoded), stolen.sign(local.primary_key, encoded))
    with pytest.raises(IdentityError) as caught:
        node.identities.import_history(
            encode([local.identity.changes[0].signed, signed]), now=NOW + 2
        )
    assert caught.value.reason is IdentityFailure.FORK


def test_concurrent_rotations_serialise(troth_home: Path) -> None:
    """Two threads (two SQLite connections) rotating at once: both succeed, one after the other."""
    init_node("c")
    with open_node("c") as node:
        node.identities.create(now=NOW, name="a")
        errors: list[BaseException] = []

        def rotate() -> None:
            try:
                node.identities.rotate("a", now=NOW + 5)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=rotate) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        history = verify_history(node.identities.export("a"), now=NOW + 6)
        assert len(history.changes) == 5
        current = KeyHandle.parse(node.identities.find("a").primary_key)
        assert node.vault.public_key(current) == history.current_key
