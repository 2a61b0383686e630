"""Review 57g (identity rotation, every layer that takes a signature): attacks that did NOT
work. Each test is a real attempt with a key the identity's rotation retired (or a fork of its
history, or a stale backup's), and fails if the defence it meets is removed.

The rotations are made as an agent's node makes them (`rotate_identity`: the committed next key
revealed, signed by it and by the current key); the thief holds the keys of a copy of the vault
taken before (its primary key, the committed next key, its signing purpose key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.histories import DAY, T0, HonestHistory, encode, extend, honest_history
from tests.support.parties import Party, make_party, signer_as, verified_feed
from troth.clock import FixedClock
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    issue_credential,
)
from troth.credentials.issue import delegate
from troth.crypto import sha256
from troth.errors import CredentialError, CredentialFailure, IdentityError, IdentityFailure
from troth.identity import (
    Checkpoint,
    HeldIdentity,
    VerifiedIdentity,
    encode_history,
    rotate_identity,
    verify_attestation,
    verify_history,
    verify_signed_by,
)
from troth.identity.known import KnownHistories
from troth.storage import SqliteDatabase, SqliteIdentityStore
from troth.vault import KeyPurpose, SoftwareVault

NOW = T0 + 10 * DAY
YEAR = 365 * DAY
MEMBER = Attributes({"agents.team": "support"})


def _known(tmp_path: Path, name: str = "n.db") -> KnownHistories:
    store = SqliteIdentityStore(SqliteDatabase(tmp_path / name))
    return KnownHistories(store, FixedClock(NOW), cache_seconds=0)


@dataclass
class Rotated:
    """A party (its pre-rotation state is the thief's copy) and its history after rotations."""

    vault: SoftwareVault
    before: Party
    after: HeldIdentity
    rotations: int

    @property
    def identity(self) -> VerifiedIdentity:
        return self.after.identity


def rotated(vault: SoftwareVault, *, times: int = 1, at: int = NOW - DAY) -> Rotated:
    """A party made at T0 (its signer is what a stolen backup holds), rotated `times` times."""
    before = make_party(vault, now=T0)
    held = HeldIdentity(before.primary, before.identity, before.next_primary)
    for step in range(times):
        held = rotate_identity(
            vault, held.identity, held.primary, held.next_key, now=at + step, valid_for=YEAR
        )
    return Rotated(vault, before, held, times)


# -- the identity layer: stored copies ---------------------------------------------------------


def test_a_store_that_saw_several_rotations_refuses_every_stale_prefix_and_fork(
    tmp_path: Path,
) -> None:
    """After four rotations stored, each older prefix (a backup taken at any point) is a
    rollback and a thief's continuation from any change it held keys for is a fork, for
    `observe` and `check`; `check_no_fork` (what a trace signature made before the rotation
    carries) passes the prefixes and still refuses the forks."""
    known = _known(tmp_path)
    line = honest_history(1)
    for day in range(1, 5):
        line = extend(line, T0 + day * DAY)
    full = verify_history(encode(line.changes), now=NOW)
    known.observe(full)
    for end in range(1, 5):
        stale = verify_history(encode(line.changes[:end]), now=NOW)
        judges: list[Callable[[VerifiedIdentity], None]] = [known.observe, known.check]
        for judge in judges:
            with pytest.raises(IdentityError) as refused:
                judge(stale)
            assert refused.value.reason is IdentityFailure.ROLLBACK
        known.check_no_fork(stale)  # an older prefix: what a record signed back then carries
        # the thief holds the keys of change end-1 and the key it committed to: its own rotation
        prefix = HonestHistory(line.keys[:end], line.changes[:end], line.keys[end])
        fork = extend(prefix, T0 + (end + 1) * DAY - 1)
        forked = verify_history(encode(fork.changes), now=NOW)
        for judge in [*judges, known.check_no_fork]:
            with pytest.raises(IdentityError) as refused:
                judge(forked)
            assert refused.value.reason is IdentityFailure.FORK
    stored = known.stored(full.identifier.digest)
    assert stored is not None
    assert stored.last == 4


def test_a_change_dated_in_the_future_or_before_its_predecessor_is_refused() -> None:
    """A thief's rotation dated ahead of the verifier's clock (past the 300 s skew), or before
    the change it follows (to make a retired key look current earlier), does not verify."""
    line = honest_history(2)
    ahead = extend(line, NOW + 301)
    with pytest.raises(IdentityError) as refused:
        verify_history(encode(ahead.changes), now=NOW)
    assert refused.value.reason is IdentityFailure.FUTURE_CHANGE
    back = extend(line, T0 + DAY - 1)  # change 1 is at T0 + DAY
    with pytest.raises(IdentityError) as refused:
        verify_history(encode(back.changes), now=NOW)
    assert refused.value.reason is IdentityFailure.TIME_REVERSED


def test_a_checkpointed_fork_dated_before_the_stored_last_change_is_refused(
    tmp_path: Path,
) -> None:
    """A checkpointed history starting right after the stored copy, its first change dated
    before the stored copy's last (an authority's checkpoint vouches for its hash, not for its
    link), does not extend the copy: the stored change makes the time rule checkable."""
    known = _known(tmp_path)
    line = honest_history(2)
    known.observe(verify_history(encode(line.changes), now=NOW))
    back = extend(line, T0 + DAY - 1)  # dated before change 1 (T0 + DAY)
    identifier = sha256(line.changes[0].body)
    named = sha256(back.changes[2].body)
    checkpointed = verify_history(
        encode_history(back.changes[2:], Checkpoint(identifier, b"\xab" * 32, 2)),
        now=NOW,
        checkpoints=lambda c, h: c.index == 2 and h == named,
    )
    with pytest.raises(IdentityError) as refused:
        known.observe(checkpointed)
    assert refused.value.reason is IdentityFailure.TIME_REVERSED


# -- purpose keys: a channel key or a signing key attested by the retired primary key ----------


@pytest.mark.parametrize("purpose", [KeyPurpose.SECURE_CHANNEL, KeyPurpose.SIGNING])
def test_the_retired_primary_key_attests_no_key_under_the_new_history(
    purpose: KeyPurpose,
) -> None:
    """The thief's attestations, by the retired primary key: made under change 0 (its own)
    and shown with the new history, STALE; naming the new current change, a bad signature
    (the current key did not make it). Also after several rotations."""
    from troth.crypto import KeyType
    from troth.identity import attest_purpose_key

    vault = SoftwareVault()
    for times in (1, 3):
        party = rotated(vault, times=times)
        key_type = KeyType.X25519 if purpose is KeyPurpose.SECURE_CHANNEL else KeyType.ED25519
        thief_key = vault.public_key(vault.generate(key_type, purpose))
        # made under change 0 (STALE under the new history); naming the new current change,
        # signed by the retired key (not the current key's signature: INVALID)
        for under, reason in (
            (party.before.identity, IdentityFailure.ATTESTATION_STALE),
            (party.identity, IdentityFailure.ATTESTATION_INVALID),
        ):
            attestation = attest_purpose_key(
                vault,
                party.before.primary,
                under,
                purpose,
                thief_key,
                now=NOW,
                expires_at=NOW + DAY,
            )
            with pytest.raises(IdentityError) as refused:
                verify_attestation(party.identity, attestation, purpose=purpose, now=NOW)
            assert refused.value.reason is reason


def test_the_retired_signing_key_signs_nothing_under_the_new_history() -> None:
    """The signing purpose key attested before the rotation (what a backup holds) signs a body
    (a feed page, a bundle, a request): shown with the new history, its attestation is STALE,
    even dated (`at`) before the rotation (the history's current change attests it or not)."""
    vault = SoftwareVault()
    party = rotated(vault)
    body = b"a body the thief signs"
    signature = party.before.signer.sign(body)
    for at in (T0 + 1, NOW):
        with pytest.raises(IdentityError) as refused:
            verify_signed_by(
                party.identity, party.before.signer.attestation, body, signature, at=at
            )
        assert refused.value.reason is IdentityFailure.ATTESTATION_STALE


# -- credentials: a delegation and a credential by the retired key ------------------------------


def _chain_to(authority: Party, member: Party | Rotated) -> CredentialChain:
    subject = member.before.identifier if isinstance(member, Rotated) else member.identifier
    signed = issue_credential(
        authority.signer, subject=subject, attributes=MEMBER, now=T0, ttl=90 * DAY, depth=2
    )
    return CredentialChain((signed,), (authority.identity.history,))


def test_a_delegation_by_the_members_retired_key_is_refused_where_her_rotation_is_known(
    tmp_path: Path,
) -> None:
    """The member rotated; the thief, with her old signing key and history, delegates to its
    own identity. A verifier whose store holds her rotation refuses the chain (the issuer
    history it carries is a rollback), and so does a stateless verifier that verified one
    chain of hers showing the new history first (its memory)."""
    vault = SoftwareVault()
    authority = make_party(vault, now=T0)
    member = rotated(vault)
    thief = make_party(vault, now=T0)
    root = _chain_to(authority, member)
    honest_signer = signer_as(vault, member.after.primary, member.identity, now=NOW - DAY)
    stolen, honest = (
        delegate(
            signer,  # her retired signing key (the thief's), then her own under the new history
            root,
            subject=thief.identifier,
            attributes=MEMBER,
            now=NOW,
            ttl=DAY,
            purpose="p",
        ).encode()
        for signer in (member.before.signer, honest_signer)
    )
    feeds = {authority.identifier: verified_feed(authority, now=NOW)}
    policy = TrustPolicy(frozenset({authority.identifier}))
    known = _known(tmp_path)
    known.observe(member.identity)

    def known_in(identity: VerifiedIdentity, _root: object) -> None:
        known.check(identity)

    with pytest.raises(CredentialError) as refused:
        ChainVerifier(policy, known_in=known_in).verify(
            stolen, presenter=thief.identifier, feeds=feeds, now=NOW
        )
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert "older" in str(refused.value)
    stateless = ChainVerifier(policy)
    assert stateless.verify(stolen, presenter=thief.identifier, feeds=feeds, now=NOW)  # no word
    stateless = ChainVerifier(policy)
    stateless.verify(honest, presenter=thief.identifier, feeds=feeds, now=NOW)
    with pytest.raises(CredentialError) as refused:
        stateless.verify(stolen, presenter=thief.identifier, feeds=feeds, now=NOW)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID


# -- revocation feeds: a page signed by the authority's retired key ------------------------------


def _supersession_of_itself(authority: Rotated) -> bytes:
    """Entry 0 of the rotated authority's feed: its own history supersedes the older ones."""
    from troth.credentials import RevocationEntry, RevocationKind
    from troth.credentials.revocation_entry import Supersession

    identity = authority.identity
    return RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        identity.identifier.digest,
        identity.identifier,
        NOW - DAY,
        "",
        Supersession(identity.change_count, identity.current_change_hash),
    ).encode()


def test_a_feed_page_by_the_authoritys_retired_key_is_refused(tmp_path: Path) -> None:
    """The thief signs a page of the authority's feed with its pre-rotation signing key (a
    fresh page: it would keep a verifier's held feed fresh past the real one, or start one):
    refused where the authority's rotation is stored (`known`), and where the feed held names
    the authority's own supersession (the thief's page extends it, adding nothing)."""
    from troth.credentials import feed_genesis, next_head, verify_page
    from troth.credentials.revocation_pages import build_page

    vault = SoftwareVault()
    authority = rotated(vault)
    identifier = authority.identity.identifier
    known = _known(tmp_path)
    known.observe(authority.identity)
    stolen = build_page(
        authority.before.signer,
        [],
        start=0,
        head=feed_genesis(identifier),
        latest=0,
        now=NOW,
    )
    with pytest.raises(CredentialError) as refused:
        verify_page(stolen, authority=identifier, now=NOW, known=known.check)
    assert refused.value.reason is CredentialFailure.FEED_INVALID
    assert "older" in str(refused.value)
    entry = _supersession_of_itself(authority)
    head = next_head(feed_genesis(identifier), entry)
    honest_signer = signer_as(vault, authority.after.primary, authority.identity, now=NOW - DAY)
    real = build_page(honest_signer, [entry], start=0, head=head, latest=1, now=NOW - 60)
    held = verify_page(real, authority=identifier, now=NOW)
    stale = build_page(authority.before.signer, [], start=1, head=head, latest=1, now=NOW)
    with pytest.raises(CredentialError) as refused:
        verify_page(stale, authority=identifier, now=NOW, previous=held)
    assert refused.value.reason is CredentialFailure.FEED_INVALID
    assert "superseded" in str(refused.value)


# -- W3C VCs: one issued with the authority's retired key -------------------------------------


def test_a_vc_by_the_authoritys_retired_key_is_refused_under_either_history() -> None:
    """The thief exports a VC with the authority's pre-rotation signing key. Shown with the new
    history, the proof's key attestation is stale (ATTESTATION_INVALID); shown with the old
    one, the authority's feed (naming its own rotation) supersedes it."""
    from troth.credentials import verify_feed
    from troth.credentials.vc import export_credential_vc, verify_troth_vc

    vault = SoftwareVault()
    authority = rotated(vault)
    identifier = authority.identity.identifier
    subject = make_party(vault, now=T0)
    document = export_credential_vc(
        authority.before.signer,
        credential_id=b"\x01" * 16,
        subject=subject.identifier,
        attributes=MEMBER,
        valid_from=NOW - 60,
        valid_until=NOW + DAY,
        now=NOW - 60,
    )
    from troth.credentials import feed_genesis, next_head
    from troth.credentials.revocation_pages import build_feed

    entry = _supersession_of_itself(authority)
    honest_signer = signer_as(vault, authority.after.primary, authority.identity, now=NOW - DAY)
    page = build_feed(honest_signer, [entry], next_head(feed_genesis(identifier), entry), now=NOW)
    feeds = {identifier: verify_feed(page, authority=identifier, now=NOW, max_staleness=300)}
    policy = TrustPolicy(frozenset({identifier}))
    with pytest.raises(CredentialError) as refused:
        verify_troth_vc(document, policy=policy, issuer=authority.identity, feeds=feeds, now=NOW)
    assert refused.value.reason is CredentialFailure.ATTESTATION_INVALID
    old = authority.before.identity
    with pytest.raises(CredentialError) as refused:
        verify_troth_vc(document, policy=policy, issuer=old, feeds=feeds, now=NOW)
    assert refused.value.reason is CredentialFailure.SUPERSEDED


# -- enrollment tickets: one carrying the authority's pre-rotation history ----------------------


def test_a_ticket_with_the_authoritys_stale_history_is_refused_where_its_rotation_is_known(
    tmp_path: Path,
) -> None:
    """A ticket is the authority's history and an address (not signed): the thief's, carrying
    the pre-rotation history (its keys open the channel at the thief's address), is refused by
    a node given the authority's pin of its current key. A node storing the rotation takes the
    ticket's older prefix as the authority's (review 57e, rotation 1: an honest ticket issued
    before a rotation), and judges the enrolling channel by the stored, rotated history, which
    refuses the thief's pre-rotation keys (tests/test_review57o_refuted.py, stale backup)."""
    from troth.authority import Ticket
    from troth.authority.client import authority_pin_of, check_ticket
    from troth.identity import IdentityService

    vault = SoftwareVault()
    authority = rotated(vault, times=2)
    ticket = Ticket(b"\x02" * 16, authority.before.identity.history, "/tcp/thief:4000")
    db = SqliteDatabase(tmp_path / "n.db")
    identities = IdentityService(SoftwareVault(), SqliteIdentityStore(db), clock=FixedClock(NOW))
    pin = authority_pin_of(authority.identity)
    with pytest.raises(IdentityError) as refused:
        check_ticket(identities, ticket, now=NOW, authority_pin=pin)
    assert "not the pinned one" in str(refused.value)
    identities.import_history(authority.identity.history, now=NOW)
    assert check_ticket(identities, ticket, now=NOW) == authority.identity.identifier
    assert identities.stored_changes(authority.identity.identifier) == 3  # still rotated


# -- trace records: one signed by the agent's retired key ---------------------------------------


def test_a_trace_record_by_the_retired_key_is_refused_once_the_log_holds_the_rotation(
    tmp_path: Path,
) -> None:
    """The agent records, rotates and records again. The thief's record signed with its
    retired signing key (carrying the old history), appended as of a time after the rotation,
    and one dated back before it (the log's clock set back within the record window): both
    refused, the chain left as it was."""
    from tests.support.traces import NOW as TNOW
    from tests.support.traces import Held, open_log, recorder, tool_call
    from troth.errors import TraceError, TraceFailure

    clock = FixedClock(TNOW)
    log = open_log(tmp_path / "trace.db", clock)
    agent = Held()
    old = agent.signer(TNOW)
    recorder(log, agent, clock).record(tool_call())
    agent.rotate(TNOW + 100)
    clock.advance(100)
    recorder(log, agent, clock).record(tool_call())
    head = log.head(agent.identifier)
    clock.advance(50)  # the log's clock: TNOW + 150
    from troth.trace import TraceRecorder

    for when in (TNOW + 150, TNOW + 99):  # after the rotation; dated back before it
        thief = TraceRecorder(log, lambda now: old, clock=FixedClock(when))
        with pytest.raises(TraceError) as refused:
            thief.record(tool_call())
        assert refused.value.reason in (
            TraceFailure.ATTESTATION_STALE,
            TraceFailure.KEY_RETIRED,
            TraceFailure.TIME_REVERSED,
        ), refused.value
    assert log.head(agent.identifier) == head


# -- policy bundles: one signed with the authority's retired key --------------------------------


def test_a_bundle_by_the_authoritys_retired_key_is_refused_where_its_rotation_is_stored(
    tmp_path: Path,
) -> None:
    """The authority rotates (its feed does not say so yet); a node stored its new history. The
    thief signs a bundle of a higher revision with the authority's pre-rotation key: refused
    (the signer history is older than the stored copy); the authority's own, signed under the
    new history, is taken."""
    from tests.support.gates import T as GT
    from tests.support.gates import make_world, rotate
    from troth.errors import PolicyError, PolicyFailure
    from troth.gates import verify_bundle

    world = make_world()
    history, authority = rotate(world, world.authority, GT + 20)
    known = KnownHistories(
        SqliteIdentityStore(SqliteDatabase(tmp_path / "n.db")), FixedClock(GT + 30)
    )
    known.observe(history)
    stolen = world.bundle(revision=2, now=GT + 25)  # world.authority: the pre-rotation signer
    with pytest.raises(PolicyError) as refused:
        verify_bundle(
            stolen, verifier=world.verifier, feeds=world.feeds(), now=GT + 30, known=known.check
        )
    assert refused.value.reason is PolicyFailure.SIGNER_INVALID
    assert "older" in str(refused.value)
    world.authority = authority
    own = world.bundle(revision=2, now=GT + 25)
    verify_bundle(own, verifier=world.verifier, feeds=world.feeds(), now=GT + 30, known=known.check)
