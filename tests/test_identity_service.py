"""The identity service over real SQLite: create, rotate, import (append-only), purpose keys."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.support.histories import HonestHistory, encode, extend, honest_history
from troth.crypto import KeyType, sha256
from troth.errors import ConflictError, IdentityError, IdentityFailure, KeyNotFound, NotFound
from troth.identity import (
    IdentityService,
    decode_history,
    next_key_digest,
    rotate_identity,
    verify_history,
)
from troth.identity.fresh import NewKeys
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
    with pytest.raises(NotFound, match=r"no local identity 'bob"):
        service.get("bob", now=NOW)
    with pytest.raises(ConflictError, match="exists"):
        service.create(now=NOW, name="alice")
    with pytest.raises(ValueError, match="invalid identity name"):
        service.create(now=NOW, name="Alice")


def test_create_many_is_atomic(node: Node) -> None:
    node.identities.create(now=NOW, name="batch-3")
    with pytest.raises(ConflictError, match=r"an identity named 'batch\-"):
        node.identities.create_many(5, now=NOW, name_prefix="batch")
    assert [r.name for r in node.identities.list_local()] == ["batch-3"]
    assert node.db.fetch_one("SELECT count(*) FROM vault_keys")[0] == 2  # primary + next
    created = node.identities.create_many(5, now=NOW, name_prefix="agent")
    assert len({c.identifier for c in created}) == 5


def test_a_batch_is_stored_whole_and_its_keys_open_in_a_new_process(troth_home: Path) -> None:
    """A batch writes its keys and rows together at its end (several INSERTs of many rows);
    a fresh open finds every identity, its history and both of its keys."""
    init_node("n")
    with open_node("n") as node:
        created = node.identities.create_many(300, now=NOW, name_prefix="b")
    with open_node("n") as node:
        assert len(list(node.identities.list_local())) == 300
        for local in (created[0], created[150], created[-1]):
            stored = node.identities.get(local.name or "", now=NOW)
            assert stored.identity.history == local.identity.history
            assert node.vault.public_key(stored.primary_key) == local.identity.current_key
            committed = node.vault.public_key(stored.next_key)
            assert next_key_digest(committed) == local.identity.next_key_digest


def test_next_key_is_generated_committed_and_unused(node: Node) -> None:
    """The next key is made in the vault with the identity, only its digest is published, and
    nothing is signed with it until the rotation that reveals it."""
    local = node.identities.create(now=NOW, name="a")
    committed = node.vault.public_key(local.next_key)
    assert local.next_key != local.primary_key
    assert local.identity.next_key_digest == next_key_digest(committed)
    assert committed.data not in node.identities.export("a")
    signing, _ = node.identities.purpose_key("a", KeyPurpose.SIGNING, now=NOW)
    assert signing not in (local.primary_key, local.next_key)
    again = node.identities.get("a", now=NOW)
    assert again.next_key == local.next_key
    rotated = node.identities.rotate("a", now=NOW + 5)
    assert rotated.primary_key == local.next_key
    assert rotated.identity.current_key == committed
    assert rotated.next_key not in (local.primary_key, local.next_key)
    assert rotated.identity.next_key_digest == next_key_digest(
        node.vault.public_key(rotated.next_key)
    )


def test_rotation_keeps_identifier_and_retires_keys(node: Node) -> None:
    service = node.identities
    local = service.create(now=NOW, name="a", key_type=KeyType.P256)
    old_channel, _ = service.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW)
    rotated = service.rotate("a", now=NOW + 10)
    assert rotated.identifier == local.identifier
    assert rotated.identity.current_key.key_type is KeyType.P256
    assert len(verify_history(service.export("a"), now=NOW + 20).changes) == 2
    # the old primary key and the old purpose key are gone from the vault
    for handle in (local.primary_key, old_channel):
        with pytest.raises(KeyNotFound, match="no key software:"):
            node.vault.public_key(handle)
    new_channel, attested = service.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW + 20)
    assert new_channel != old_channel
    assert attested.identifier == local.identifier


def test_a_rotation_that_fails_after_retiring_keys_keeps_them(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's software vault keeps its keys in the node's database: a rotation deletes the
    retired keys inside its transaction, so one that fails after that (here: at the end of the
    transaction) rolls the deletion back with it and the identity still signs with its key."""
    service = node.identities
    local = service.create(now=NOW, name="a")
    channel, _ = service.purpose_key("a", KeyPurpose.SECURE_CHANNEL, now=NOW)
    retire = service._retire_keys

    def retire_then_fail(handles: list[tuple[KeyHandle, KeyPurpose]], fresh: NewKeys) -> None:
        retire(handles, fresh)
        # every retired key was deleted inside the transaction, none left to delete after it
        assert service.store.retired_keys(16) == []
        raise ConflictError("the commit failed")

    monkeypatch.setattr(service, "_retire_keys", retire_then_fail)
    with pytest.raises(ConflictError, match=r"the commit failed"):
        service.rotate("a", now=NOW + 10)
    monkeypatch.undo()
    kept = service.get("a", now=NOW + 10)
    assert kept.primary_key == local.primary_key
    assert len(kept.identity.changes) == 1
    for handle in (local.primary_key, local.next_key):
        node.vault.sign(handle, b"still here")
    node.vault.public_key(channel)
    assert len(service.rotate("a", now=NOW + 20).identity.changes) == 2


def test_rotation_to_another_key_type_appends_two_changes(node: Node) -> None:
    """The commitment names a P-256 key: switching to Ed25519 reveals it while committing to an
    Ed25519 key, then reveals that one, in one transaction."""
    service = node.identities
    local = service.create(now=NOW, name="a", key_type=KeyType.P256)
    rotated = service.rotate("a", now=NOW + 10, key_type=KeyType.ED25519)
    history = verify_history(service.export("a"), now=NOW + 20)
    assert [c.body.primary_key.key_type for c in history.changes] == [
        KeyType.P256,
        KeyType.P256,
        KeyType.ED25519,
    ]
    assert history.identifier == local.identifier
    assert rotated.identity.history == history.history
    assert rotated.primary_key.key_type is rotated.next_key.key_type is KeyType.ED25519
    for handle in (local.primary_key, local.next_key):  # the intermediate key is deleted too
        with pytest.raises(KeyNotFound, match=r"no key software:p256"):
            node.vault.public_key(handle)
    again = service.rotate("a", now=NOW + 30)  # the next rotation is a single change again
    assert len(again.identity.changes) == 4


def test_rotation_reads_a_clock_inside_its_transaction(node: Node) -> None:
    """With a Clock, the time is read after the write lock is taken."""
    service = node.identities
    service.create(now=NOW, name="a")
    reads: list[bool] = []

    class LockCheckingClock:
        def now(self) -> int:
            reads.append(node.db.connection().in_transaction)
            return NOW + 7

    rotated = service.rotate("a", now=LockCheckingClock())
    assert reads == [True]
    assert rotated.identity.current.body.created_at == NOW + 7


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
    history = extend(extend(honest_history(1, start=NOW - 100), NOW - 99), NOW - 98)
    changes = history.changes
    service.import_history(encode(changes[:2]), now=NOW)
    service.import_history(encode(changes[:2]), now=NOW)  # same again: fine
    service.import_history(encode(changes), now=NOW)  # extension: stored
    digest = sha256(changes[0].body)
    assert node.identities.store.get_history(digest) == (encode(changes), 3)
    with pytest.raises(IdentityError) as caught:
        service.import_history(encode(changes[:2]), now=NOW)
    assert caught.value.reason is IdentityFailure.ROLLBACK
    # a fork that verifies on its own (the committed key re-used with another next key)
    prefix = HonestHistory(history.keys[:2], changes[:2], history.keys[2])
    fork = extend(prefix, NOW - 90)
    verify_history(encode(fork.changes), now=NOW)
    with pytest.raises(IdentityError) as caught:
        service.import_history(encode(fork.changes), now=NOW)
    assert caught.value.reason is IdentityFailure.FORK
    assert caught.value.change == 2
    assert node.identities.store.get_history(digest) == (encode(changes), 3)


def test_local_identity_cannot_be_extended_by_import(node: Node) -> None:
    """Even a valid rotation made with this node's own keys (next key included) is not taken
    from outside: a local identity is rotated only by IdentityService.rotate."""
    local = node.identities.create(now=NOW, name="mine")
    extension = rotate_identity(
        node.vault,
        local.identity,
        local.primary_key,
        local.next_key,
        now=NOW + 1,
        valid_for=10**6,
    )
    with pytest.raises(IdentityError) as caught:
        node.identities.import_history(extension.identity.history, now=NOW + 2)
    assert caught.value.reason is IdentityFailure.FORK
    assert node.identities.export("mine") == local.identity.history


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


def test_a_history_kept_in_memory_is_rechecked_at_each_time(troth_home: Path) -> None:
    """The service reuses local histories it built; the rules that depend on `now` still apply,
    with the same reasons as a fresh verification."""
    init_node("t")
    with open_node("t") as node:
        warm = IdentityService(node.vault, node.identities.store, primary_key_ttl=100)
        warm.create(now=NOW, name="a")
        cold = IdentityService(node.vault, node.identities.store)
        for service in (warm, cold):
            assert service.get("a", now=NOW + 100).identity.current.body.valid_until == NOW + 100
            for now, reason in (
                (NOW + 101, IdentityFailure.KEY_OUTSIDE_VALIDITY),
                (NOW - 301, IdentityFailure.FUTURE_CHANGE),
            ):
                with pytest.raises(IdentityError) as caught:
                    service.get("a", now=now)
                assert caught.value.reason is reason
                assert caught.value.change == 0
