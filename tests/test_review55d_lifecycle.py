"""Review 55d, key lifecycle: what the vault signs with is the key an identity's records name,
and a writer of node.db without the vault key (the threat model of reviews 48k and 48r: a copy
of node.db put back, a process that writes the file and cannot use the vault) repoints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NOW
from troth.authority.requests import make_request, verify_request
from troth.encoding import cbor
from troth.errors import IdentityError
from troth.identity import verify_signed_by
from troth.node import init_node, open_node
from troth.storage import SqliteDatabase
from troth.vault import KeyPurpose

_SIGNING = int(KeyPurpose.SIGNING)


def _swap_signing_handles(db_path: Path, first: bytes, second: bytes) -> None:
    """What a writer of node.db does without the vault key: the two identities' signing key
    records keep their attestations and exchange the handles of their keys."""
    db = SqliteDatabase(db_path)
    try:
        query = "SELECT key_handle FROM purpose_keys WHERE identifier = ? AND purpose = ?"
        (a_handle,) = db.fetch_one(query, (first, _SIGNING))
        (b_handle,) = db.fetch_one(query, (second, _SIGNING))
        update = "UPDATE purpose_keys SET key_handle = ? WHERE identifier = ? AND purpose = ?"
        with db.transaction():
            db.execute(update, (b_handle, first, _SIGNING))
            db.execute(update, (a_handle, second, _SIGNING))
    finally:
        db.close()


def test_a_signing_record_pointed_at_another_identitys_key_does_not_sign_with_it(
    troth_home: Path,
) -> None:
    """Review 55d, lifecycle 1. Two identities of one node, alice and bob, each with a signing
    key. A writer of node.db swaps the handles of their signing key records (the attestations
    stay). `IdentityService.signer("alice")` took the record's handle because alice's
    attestation in it verified, never asking whether the key under the handle is the one it
    attests, so alice's signer signed with bob's key: each request alice's node made to an
    authority (enroll with her ticket, refresh, revoke) was a valid request of bob's once its
    attestation and history were replaced by bob's (both public), and every signature of
    alice's (trace records, credentials) was bob's.

    Was a strict xfail until the record's key was checked against its attestation before use
    (a record whose key is not the one attested is renewed, and the key it names is left)."""
    init_node("n")
    with open_node("n") as node:
        alice = node.identities.create(now=NOW, name="alice")
        bob = node.identities.create(now=NOW, name="bob")
        alice_key, _ = node.identities.purpose_key("alice", KeyPurpose.SIGNING, now=NOW)
        bob_signer = node.identities.signer("bob", now=NOW)
    _swap_signing_handles(
        troth_home / "nodes" / "n" / "node.db",
        alice.identifier.digest,
        bob.identifier.digest,
    )
    with open_node("n") as node:
        signer = node.identities.signer("alice", now=NOW + 10)
        request = make_request(signer, "refresh", bob.identifier, [], now=NOW + 10)
        body, signature, _attestation, _history = cbor.decode(request)
        # alice's request, with bob's (public) attestation and history put in
        relabelled = cbor.encode([body, signature, bob_signer.attestation, bob.identity.history])
        with pytest.raises(IdentityError):
            verify_signed_by(bob.identity, bob_signer.attestation, body, signature, at=NOW + 10)
        with pytest.raises(Exception):  # noqa: B017,PT011 - AuthorityError: not bob's request
            verify_request(relabelled, authority=bob.identifier, kind="refresh", now=NOW + 10)
        # alice signs as herself, with a key renewed; bob too (his record names alice's old
        # key), and neither renewal took the other's key from the vault
        verify_signed_by(alice.identity, signer.attestation, body, signature, at=NOW + 10)
        bob_now = node.identities.signer("bob", now=NOW + 10)
        verify_signed_by(bob.identity, bob_now.attestation, b"m", bob_now.sign(b"m"), at=NOW + 10)
        assert bob_now.attestation != bob_signer.attestation
        for old in (bob_signer.handle, alice_key):  # still in the vault: no one retired them
            node.vault.public_key(old)
