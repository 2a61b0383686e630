"""The revocation feed: signed, sequenced, append-only; stale or rolled-back feeds refused."""

from __future__ import annotations

import pytest

from tests.support.parties import Party, empty_feed, feed_with, make_party
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    build_feed,
    feed_genesis,
    next_head,
    verify_feed,
)
from troth.encoding import cbor
from troth.errors import CredentialError, CredentialFailure
from troth.identity import Identifier
from troth.vault import SoftwareVault

F = CredentialFailure
T = 1_780_000_000


@pytest.fixture
def authority() -> Party:
    return make_party(SoftwareVault(), now=T)


def rejects(data: bytes, authority: Party, reason: CredentialFailure, **kwargs: object) -> None:
    args: dict[str, object] = {
        "authority": authority.identifier,
        "now": T + 10,
        "max_staleness": 300,
    }
    args.update(kwargs)
    with pytest.raises(CredentialError) as caught:
        verify_feed(data, **args)  # type: ignore[arg-type]
    assert caught.value.reason is reason, caught.value


def test_empty_and_populated(authority: Party) -> None:
    feed = verify_feed(
        empty_feed(authority, now=T), authority=authority.identifier, now=T, max_staleness=60
    )
    assert feed.count == 0
    assert feed.head == feed_genesis(authority.identifier)
    data = feed_with(authority, [(1, b"\x01" * 32), (2, b"\x02" * 32)], now=T)
    feed = verify_feed(data, authority=authority.identifier, now=T, max_staleness=60)
    assert feed.revoked_credentials == {b"\x01" * 32}
    assert feed.revoked_identities == {b"\x02" * 32}
    assert [e.seq for e in feed.entries] == [0, 1]


def test_staleness(authority: Party) -> None:
    data = empty_feed(authority, now=T)
    verify_feed(data, authority=authority.identifier, now=T + 300, max_staleness=300)
    rejects(data, authority, F.STALE_FEED, now=T + 301)
    future = empty_feed(authority, now=T + 10_000)
    rejects(future, authority, F.FEED_INVALID)


def test_wrong_authority_and_tampering(authority: Party) -> None:
    other = make_party(SoftwareVault(), now=T)
    data = feed_with(authority, [(1, b"\x01" * 32)], now=T)
    rejects(data, other, F.FEED_INVALID)
    value = cbor.decode(data)
    value[3] = []  # drop the entries, keep the signed head
    rejects(cbor.encode(value), authority, F.FEED_INVALID)
    value = cbor.decode(data)
    body, _signature, attestation = value[2]
    value[2] = [body, bytes(64), attestation]
    rejects(cbor.encode(value), authority, F.FEED_INVALID)
    value = cbor.decode(data)
    value[4] = other.identity.history
    rejects(cbor.encode(value), authority, F.FEED_INVALID)
    rejects(b"\x00garbage", authority, F.FEED_INVALID)


def test_sequence_gap_is_refused(authority: Party) -> None:
    entry = RevocationEntry(
        1, RevocationKind.CREDENTIAL, b"\x01" * 32, authority.identifier, T, ""
    ).encode()
    head = next_head(feed_genesis(authority.identifier), entry)
    rejects(build_feed(authority.signer, [entry], head, now=T), authority, F.FEED_INVALID)


def test_append_only(authority: Party) -> None:
    one = verify_feed(
        feed_with(authority, [(1, b"\x01" * 32)], now=T, revoked_at=T),
        authority=authority.identifier,
        now=T,
        max_staleness=60,
    )
    two = feed_with(authority, [(1, b"\x01" * 32), (1, b"\x02" * 32)], now=T + 5, revoked_at=T)
    verify_feed(two, authority=authority.identifier, now=T + 5, max_staleness=60, previous=one)
    held = verify_feed(two, authority=authority.identifier, now=T + 5, max_staleness=60)
    # an older feed (fewer entries) after a newer one: rollback
    rejects(empty_feed(authority, now=T + 6), authority, F.FEED_ROLLBACK, previous=held)
    # same length, different entries: a fork
    fork = feed_with(authority, [(1, b"\x01" * 32), (1, b"\x03" * 32)], now=T + 6, revoked_at=T)
    rejects(fork, authority, F.FEED_ROLLBACK, previous=held)
    # a snapshot issued before the held one
    rejects(
        feed_with(authority, [(1, b"\x01" * 32), (1, b"\x02" * 32)], now=T + 4, revoked_at=T),
        authority,
        F.FEED_ROLLBACK,
        previous=held,
    )


def test_entry_shapes() -> None:
    by = Identifier(b"\x05" * 32)
    with pytest.raises(ValueError, match="32 bytes"):
        RevocationEntry(0, RevocationKind.CREDENTIAL, b"\x01" * 16, by, T, "")
    with pytest.raises(ValueError, match="32 bytes"):
        RevocationEntry(0, RevocationKind.IDENTITY, b"\x01" * 31, by, T, "")
