"""The revocation feed v2: signed pages verified from the head a holder has; stale, incomplete,
rolled-back, forked and tampered pages refused; supersessions; feed files."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.feeds import entries, pages
from tests.support.parties import Party, empty_feed, feed_with, make_party
from troth import limits
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    VerifiedFeed,
    build_page,
    feed_genesis,
    read_page_sequence,
    verify_feed,
    verify_page,
    verify_pages,
    write_page_sequence,
)
from troth.encoding import cbor
from troth.errors import (
    CredentialError,
    CredentialFailure,
    DecodeError,
    DecodeProblem,
    IdentityError,
    IdentityFailure,
)
from troth.identity import Identifier, VerifiedIdentity
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

F = CredentialFailure
T = 1_780_000_000
K = RevocationKind


@pytest.fixture
def authority() -> Party:
    return make_party(SoftwareVault(), now=T)


def rejects(data: bytes, authority: Party, reason: CredentialFailure, **kwargs: object) -> None:
    args: dict[str, object] = {"authority": authority.identifier, "now": T + 10}
    args.update(kwargs)
    with pytest.raises(CredentialError) as caught:
        verify_page(data, **args)  # type: ignore[arg-type]
    assert caught.value.reason is reason, caught.value


def held(authority: Party, *feed: bytes, now: int = T + 10) -> VerifiedFeed:
    return verify_pages(feed, authority=authority.identifier, now=now)


def test_empty_and_populated(authority: Party) -> None:
    feed = verify_feed(
        empty_feed(authority, now=T), authority=authority.identifier, now=T, max_staleness=60
    )
    assert (feed.count, feed.latest, feed.complete) == (0, 0, True)
    assert feed.head == feed_genesis(authority.identifier)
    data = feed_with(authority, [(1, b"\x01" * 32), (2, b"\x02" * 32)], now=T)
    feed = verify_feed(data, authority=authority.identifier, now=T, max_staleness=60)
    assert feed.revoked_credentials == {b"\x01" * 32}
    assert feed.revoked_identities == {b"\x02" * 32}
    assert b"\x02" * 32 not in feed.revoked_credentials
    assert feed.credential_revoked(b"\x01" * 32)
    assert feed.identity_revoked(b"\x02" * 32)
    assert not feed.credential_revoked(b"\x02" * 32)
    assert not feed.identity_revoked(b"\x01" * 32)
    assert [e.seq for e in feed.new_entries] == [0, 1]


def test_staleness_and_incomplete_sync(authority: Party) -> None:
    data = empty_feed(authority, now=T)
    verify_feed(data, authority=authority.identifier, now=T + 300, max_staleness=300)
    with pytest.raises(CredentialError) as caught:
        verify_feed(data, authority=authority.identifier, now=T + 301, max_staleness=300)
    assert caught.value.reason is F.STALE_FEED
    rejects(empty_feed(authority, now=T + 10_000), authority, F.FEED_INVALID)
    # the first of two pages verifies, but a holder with only it is not up to date
    feed = entries(authority, [(1, bytes([n]) * 32) for n in range(4)], at=T)
    first, second = pages(authority, feed, now=T, per_page=2)
    partial = held(authority, first)
    assert (partial.count, partial.latest, partial.complete) == (2, 4, False)
    with pytest.raises(CredentialError) as caught:
        partial.check_fresh(now=T, max_staleness=300)
    assert caught.value.reason is F.STALE_FEED
    assert "sync incomplete" in str(caught.value)
    whole = verify_page(second, authority=authority.identifier, now=T, previous=partial)
    whole.check_fresh(now=T, max_staleness=300)
    assert whole.revoked_credentials == {bytes([n]) * 32 for n in range(4)}


def test_wrong_authority_and_tampering(authority: Party) -> None:
    other = make_party(SoftwareVault(), now=T)
    data = feed_with(authority, [(1, b"\x01" * 32)], now=T)
    rejects(data, other, F.FEED_INVALID)
    value = cbor.decode(data)
    value[4] = []  # drop the entries, keep the signed head
    rejects(cbor.encode(value), authority, F.FEED_INVALID)
    value = cbor.decode(data)
    body, _signature, attestation = value[2]
    value[2] = [body, bytes(64), attestation]
    rejects(cbor.encode(value), authority, F.FEED_INVALID)
    value = cbor.decode(data)
    value[5] = other.identity.history
    rejects(cbor.encode(value), authority, F.FEED_INVALID)
    value = cbor.decode(data)
    value[4] = [value[4][0][:-1] + b"x"]  # one byte of the reason changed: a valid entry
    rejects(cbor.encode(value), authority, F.FEED_INVALID)
    rejects(b"\x00garbage", authority, F.FEED_INVALID)


def test_sequence_gap_is_refused(authority: Party) -> None:
    entry = RevocationEntry(1, K.CREDENTIAL, b"\x01" * 32, authority.identifier, T, "")
    page = pages(authority, [entry], now=T, per_page=1)[0]
    rejects(page, authority, F.FEED_INVALID)


def test_pages_must_come_in_order(authority: Party) -> None:
    feed = entries(authority, [(1, bytes([n]) * 32) for n in range(6)], at=T)
    first, second, third = pages(authority, feed, now=T, per_page=2)
    one = held(authority, first)
    rejects(third, authority, F.FEED_INVALID, previous=one)  # a page skipped
    rejects(second, authority, F.FEED_INVALID)  # not from the first entry
    two = verify_page(second, authority=authority.identifier, now=T + 10, previous=one)
    rejects(second, authority, F.FEED_INVALID, previous=two)  # a page replayed
    rejects(first, authority, F.FEED_INVALID, previous=two)
    assert verify_page(third, authority=authority.identifier, now=T, previous=two).complete


def test_rollback_and_fork_refused(authority: Party) -> None:
    feed = entries(authority, [(1, b"\x01" * 32), (1, b"\x02" * 32)], at=T)
    current = held(authority, *pages(authority, feed, now=T + 5, per_page=2))
    # a snapshot issued before the held one, or saying the feed was shorter
    (older,) = pages(authority, feed, now=T + 4, per_page=2, start=2)
    rejects(older, authority, F.FEED_ROLLBACK, previous=current)
    (shrunk,) = pages(authority, feed[:1], now=T + 6, per_page=2, start=1, latest=1)
    rejects(shrunk, authority, F.FEED_INVALID, previous=current)
    # a fork: the same first entry, then another line (the new page does not chain from ours)
    fork = entries(authority, [(1, b"\x01" * 32), (1, b"\x03" * 32), (1, b"\x04" * 32)], at=T)
    (forked,) = pages(authority, fork, now=T + 6, per_page=2, start=2)
    rejects(forked, authority, F.FEED_INVALID, previous=current)


def test_each_view_sees_its_own_entries(authority: Party) -> None:
    """Verifying a later page never changes what an earlier feed object says, and a line
    grown from an older view does not mix with the newer one."""
    feed = entries(authority, [(1, bytes([n]) * 32) for n in range(4)], at=T)
    first, second = pages(authority, feed, now=T, per_page=2)
    one = held(authority, first)
    two = verify_page(second, authority=authority.identifier, now=T, previous=one)
    assert bytes([3]) * 32 in two.revoked_credentials
    assert bytes([3]) * 32 not in one.revoked_credentials
    assert len(one.revoked_credentials) == 2
    other = entries(authority, [(1, bytes([n]) * 32) for n in (0, 1, 7, 8)], at=T)
    (grown,) = pages(authority, other, now=T, per_page=2, start=2)
    apart = verify_page(grown, authority=authority.identifier, now=T, previous=one)
    assert bytes([7]) * 32 in apart.revoked_credentials
    assert bytes([3]) * 32 not in apart.revoked_credentials
    assert bytes([7]) * 32 not in two.revoked_credentials
    # the one-look-up forms the chain verifier uses see the same views
    assert two.credential_revoked(bytes([3]) * 32)
    assert not one.credential_revoked(bytes([3]) * 32)
    assert apart.credential_revoked(bytes([7]) * 32)
    assert not apart.credential_revoked(bytes([3]) * 32)
    assert not two.credential_revoked(bytes([7]) * 32)


@dataclass
class Lines:
    """One identity's histories: the original [c0], the owner's rotations [c0, c1] and
    [c0, c1, c2], and a thief's rotation of a stolen copy [c0, c1']."""

    original: VerifiedIdentity
    rotated: VerifiedIdentity
    extended: VerifiedIdentity
    forked: VerifiedIdentity


@pytest.fixture
def lines(troth_home: Path) -> Lines:
    init_node("owner")
    with open_node("owner") as node:
        original = node.identities.create(now=T, name="me").identity
    shutil.copytree(troth_home / "nodes" / "owner", troth_home / "nodes" / "thief")
    with open_node("owner") as node:
        rotated = node.identities.rotate("me", now=T + 1).identity
        extended = node.identities.rotate("me", now=T + 2).identity
    with open_node("thief") as node:
        forked = node.identities.rotate("me", now=T + 3).identity
    return Lines(original, rotated, extended, forked)


def test_supersession_and_check_current(authority: Party, lines: Lines) -> None:
    """A history shorter than the feed's supersession, or with another change there, is
    superseded; the announced history and its extensions are current."""
    me = lines.rotated.identifier
    supersession = Supersession(2, lines.rotated.current_change_hash)
    feed = [
        RevocationEntry(0, K.CREDENTIAL, b"\x01" * 32, authority.identifier, T, ""),
        RevocationEntry(1, K.SUPERSEDED, me.digest, me, T, "", supersession),
    ]
    before = held(authority, pages(authority, feed, now=T, per_page=1)[0])
    after = held(authority, *pages(authority, feed, now=T, per_page=1))
    before.check_current(lines.original)  # the page that supersedes it is not held yet
    assert before.supersession(me) is None
    assert after.supersession(me) == supersession
    assert after.supersession(authority.identifier) is None
    after.check_current(lines.rotated)
    after.check_current(lines.extended)
    after.check_current(authority.identity)
    for stale in (lines.original, lines.forked):
        with pytest.raises(CredentialError) as caught:
            after.check_current(stale)
        assert caught.value.reason is F.SUPERSEDED
        assert str(caught.value).startswith("superseded history")


def test_page_size_is_bounded(authority: Party) -> None:
    big = [
        RevocationEntry(n, K.CREDENTIAL, n.to_bytes(32, "big"), authority.identifier, T, "é" * 256)
        for n in range(1000)
    ]
    assert all(len(e.encode()) <= limits.MAX_REVOCATION_ENTRY_BYTES for e in big)
    with pytest.raises(ValueError, match="over"):
        pages(authority, big, now=T, per_page=1000)
    oversized = cbor.encode(
        ["troth.revocation.page", 2, [], 0, [b"\x00" * limits.MAX_FEED_PAGE_BYTES], b""]
    )
    rejects(oversized, authority, F.FEED_INVALID)


def test_feed_file_is_a_sequence_of_pages(authority: Party) -> None:
    feed = entries(authority, [(2, bytes([n]) * 32) for n in range(5)], at=T)
    written = b"".join(write_page_sequence(pages(authority, feed, now=T, per_page=2)))
    read = list(read_page_sequence(io.BytesIO(written).read))
    assert len(read) == 3
    assert held(authority, *read).revoked_identities == {bytes([n]) * 32 for n in range(5)}
    for bad, problem in (
        (written[:-1], DecodeProblem.MALFORMED),  # truncated
        (b"\x5a" + (limits.MAX_FEED_PAGE_BYTES + 1).to_bytes(4, "big"), DecodeProblem.OVER_LIMIT),
        (b"\x5b" + bytes(8), DecodeProblem.MALFORMED),  # a 2**64-byte string: not a page
        (cbor.encode(["troth.revocation.page"]), DecodeProblem.MALFORMED),  # not wrapped
        (b"\x5a\x00", DecodeProblem.MALFORMED),
    ):
        with pytest.raises(DecodeError) as caught:
            list(read_page_sequence(io.BytesIO(bad).read))
        assert caught.value.problem is problem, bad[:8]


def test_entry_shapes() -> None:
    by = Identifier(b"\x05" * 32)
    with pytest.raises(ValueError, match="32 bytes"):
        RevocationEntry(0, K.CREDENTIAL, b"\x01" * 16, by, T, "")
    with pytest.raises(ValueError, match="32 bytes"):
        RevocationEntry(0, K.IDENTITY, b"\x01" * 31, by, T, "")
    with pytest.raises(ValueError, match="supersession"):
        RevocationEntry(0, K.SUPERSEDED, b"\x01" * 32, by, T, "")
    with pytest.raises(ValueError, match="supersession"):
        RevocationEntry(0, K.CREDENTIAL, b"\x01" * 32, by, T, "", Supersession(2, b"\x00" * 32))
    with pytest.raises(ValueError, match="no reason"):
        RevocationEntry(0, K.SUPERSEDED, b"\x01" * 32, by, T, "x", Supersession(2, b"\x00" * 32))
    with pytest.raises(ValueError, match="changes"):
        Supersession(1, b"\x00" * 32)
    entry = RevocationEntry(3, K.SUPERSEDED, b"\x01" * 32, by, T, "", Supersession(5, b"\x02" * 32))
    assert RevocationEntry.decode(entry.encode()) == entry
    assert entry.to_json()["changes"] == 5
    value = cbor.decode(entry.encode())
    value[8] = None  # a supersession without its claim
    with pytest.raises(DecodeError) as raised:
        RevocationEntry.decode(cbor.encode(value))
    assert raised.value.problem is DecodeProblem.MALFORMED
    with pytest.raises(DecodeError) as raised:  # v1 entries are not read
        RevocationEntry.decode(cbor.encode(["troth.revocation", 1, *value[2:8]]))
    assert raised.value.problem is DecodeProblem.UNKNOWN_VERSION


def test_pages_are_signed_snapshots_of_their_end(authority: Party) -> None:
    feed = entries(authority, [(1, b"\x01" * 32)], at=T)
    with pytest.raises(ValueError, match="latest"):
        build_page(
            authority.signer, [feed[0].encode()], start=0, head=b"\x00" * 32, latest=0, now=T
        )


def test_a_forked_authority_history_is_refused(authority: Party) -> None:
    """`known` (the holder's stored copies) refuses the page's authority history."""
    seen: list[VerifiedIdentity] = []

    def forked(identity: VerifiedIdentity) -> None:
        seen.append(identity)
        raise IdentityError(IdentityFailure.FORK, change=1)

    rejects(empty_feed(authority, now=T), authority, F.FEED_INVALID, known=forked)
    assert [i.identifier for i in seen] == [authority.identifier]
