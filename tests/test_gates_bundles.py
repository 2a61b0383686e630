"""Signed policy bundles: who may sign, every refusal with its reason, and the store that holds
them (rollback refused, no bundle / expired / stale feed / revoked signer deny, atomic swaps,
persistence that never rolls back across processes)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.feeds import entries, pages
from tests.support.gates import TOOLS, GatesWorld, T, make_world
from troth import limits
from troth.credentials import (
    ChainVerifier,
    CredentialChain,
    RevocationKind,
    TrustPolicy,
    verify_feed,
)
from troth.crypto import sha256
from troth.encoding import cbor
from troth.errors import IdentityError, IdentityFailure, PolicyError, PolicyFailure
from troth.gates import (
    BundleBody,
    BundleStore,
    Outcome,
    SqliteBundleTable,
    ToolCall,
    create_bundle,
    decode_bundle,
    verify_bundle,
)
from troth.gates.bundles import BUNDLE_TYPE, SIGNED_BUNDLE_TYPE
from troth.identity import VerifiedIdentity
from troth.storage import SqliteDatabase

P = PolicyFailure
ALL = '@id("all") permit(principal, action in Action::"invoke", resource);'


@pytest.fixture
def world() -> GatesWorld:
    return make_world()


def refused(reason: PolicyFailure, world: GatesWorld, data: bytes, now: int = T + 5) -> None:
    with pytest.raises(PolicyError) as caught:
        verify_bundle(data, verifier=world.verifier, feeds=world.feeds(), now=now)
    assert caught.value.reason is reason, caught.value


def forged(
    world: GatesWorld, body: BundleBody, *, signer: str = "admin", chain: bytes | None
) -> bytes:
    """A bundle signed by `signer` in the documented format, bypassing create_bundle's checks."""
    party = getattr(world, signer)
    data = body.encode()
    return cbor.encode(
        [
            SIGNED_BUNDLE_TYPE,
            1,
            data,
            party.signer.sign(data),
            party.signer.attestation,
            party.identity.history,
            chain,
        ]
    )


def body_of(world: GatesWorld, signer_id: object, **changes: object) -> BundleBody:
    fields: dict[str, object] = {
        "authority": world.authority.identifier,
        "signer": signer_id,
        "revision": 1,
        "issued_at": T,
        "expires_at": T + 3600,
        "policies": ALL,
        "schema": "",
        "tools": {name: decode_bundle(world.bundle()).tools[name] for name in TOOLS},
        "services": {},
    }
    fields.update(changes)
    return BundleBody(**fields)  # type: ignore[arg-type]


def test_the_authority_and_a_policy_admin_may_sign(world: GatesWorld) -> None:
    for by_admin in (False, True):
        data = world.bundle(by_admin=by_admin)
        verified = verify_bundle(data, verifier=world.verifier, feeds=world.feeds(), now=T + 5)
        signer = world.admin if by_admin else world.authority
        assert verified.body.signer == signer.identifier
        assert verified.compiled.policy_ids == ("lookup", "refund", "refund-cap", "export")
        assert verified.to_json()["tools"] == sorted(TOOLS)


def test_create_refuses_what_does_not_validate(world: GatesWorld) -> None:
    bad = (
        '@id("x") permit(principal, action == Action::"invoke:refund", resource)'
        ' when { context.args.amount == "1" };'
    )
    with pytest.raises(PolicyError) as caught:
        world.bundle(policies=bad)
    assert caught.value.reason is P.POLICIES_INVALID
    assert caught.value.messages
    assert caught.value.messages[0].startswith("[x]")


def test_create_refuses_a_non_admin_and_a_bad_lifetime(world: GatesWorld) -> None:
    with pytest.raises(PolicyError) as caught:
        create_bundle(
            world.support.signer,
            authority=world.authority.identifier,
            policies=ALL,
            schema="",
            tools=TOOLS,
            revision=1,
            now=T,
            ttl=60,
            chain=world.support_chain,
        )
    assert caught.value.reason is P.NOT_POLICY_ADMIN
    for ttl in (0, limits.MAX_POLICY_BUNDLE_TTL + 1):
        with pytest.raises(PolicyError) as raised:
            world.bundle(ttl=ttl)
        assert raised.value.reason is PolicyFailure.EXPIRED
    with pytest.raises(PolicyError) as raised:
        world.bundle(revision=0)
    assert raised.value.reason is PolicyFailure.MALFORMED


def test_a_bundle_signed_by_a_non_admin_is_refused(world: GatesWorld) -> None:
    support, authority = world.support.identifier, world.authority.identifier
    for signer, named, chain, reason in (
        ("support", support, world.support_chain, P.NOT_POLICY_ADMIN),  # a plain member
        ("support", support, None, P.NOT_POLICY_ADMIN),  # a member without a chain
        ("support", support, world.admin_chain, P.SIGNER_INVALID),  # someone else's chain
        ("admin", authority, None, P.SIGNER_INVALID),  # claims the authority signed
    ):
        refused(reason, world, forged(world, body_of(world, named), signer=signer, chain=chain))


def test_a_revoked_admin_is_refused_before_and_after_acceptance(world: GatesWorld) -> None:
    data = world.bundle(by_admin=True)
    store = world.store(data)
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    request = ToolCall("lookup_order", {"order_id": "o1"})
    assert point.decide(member, request, now=T + 10).allowed
    admin_link = decode_chain_hash(world.admin_chain)
    world.revoke(RevocationKind.CREDENTIAL, admin_link, now=T + 20)
    refused(P.SIGNER_REVOKED, world, data, now=T + 25)
    decision = point.decide(member, request, now=T + 25)
    assert (decision.allowed, decision.outcome) == (False, Outcome.NOT_IN_FORCE)
    assert "revoked" in decision.reason


def test_a_revoked_admin_identity_is_refused(world: GatesWorld) -> None:
    data = world.bundle(by_admin=True)
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 1)
    refused(P.SIGNER_REVOKED, world, data)


def test_a_superseded_signer_history_is_refused(world: GatesWorld) -> None:
    data = world.bundle(by_admin=True)
    superseded = entries(
        world.authority, [(RevocationKind.SUPERSEDED, world.admin.identifier.digest)], at=T
    )
    (page,) = pages(world.authority, superseded, now=T + 1, per_page=10)
    world.feed = verify_feed(
        page, authority=world.authority.identifier, now=T + 1, max_staleness=60
    )
    refused(P.SIGNER_SUPERSEDED, world, data)


def test_every_flipped_byte_is_refused(world: GatesWorld) -> None:
    data = world.bundle(by_admin=True)
    for position in range(0, len(data), max(1, len(data) // 400)):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        with pytest.raises(PolicyError):
            verify_bundle(bytes(tampered), verifier=world.verifier, feeds=world.feeds(), now=T + 5)


def test_a_flipped_signature_byte_is_a_bad_signature(world: GatesWorld) -> None:
    data = world.bundle()
    value = cbor.decode(data)
    value[3] = bytes([value[3][0] ^ 1]) + value[3][1:]
    refused(P.BAD_SIGNATURE, world, cbor.encode(value))


def test_time_trust_and_format_refusals(world: GatesWorld) -> None:
    refused(P.NOT_YET_VALID, world, world.bundle(now=T + 1000), now=T + 5)
    refused(P.EXPIRED, world, world.bundle(ttl=100), now=T + 100)
    other = ChainVerifier(TrustPolicy(frozenset({world.admin.identifier})))
    with pytest.raises(PolicyError) as caught:
        verify_bundle(world.bundle(), verifier=other, feeds=world.feeds(), now=T + 5)
    assert caught.value.reason is P.UNTRUSTED_AUTHORITY
    too_long = body_of(
        world, world.authority.identifier, expires_at=T + limits.MAX_POLICY_BUNDLE_TTL + 1
    )
    refused(P.OVER_LIMIT, world, forged(world, too_long, signer="authority", chain=None))
    value = cbor.decode(world.bundle())
    for index, replacement, reason in (
        (0, "troth.other", P.UNKNOWN_TYPE),
        (1, 2, P.UNKNOWN_VERSION),
        (6, b"not a chain", P.MALFORMED),
    ):
        changed = list(value)
        changed[index] = replacement
        refused(reason, world, cbor.encode(changed))
    refused(P.OVER_LIMIT, world, b"\x00" * (limits.MAX_POLICY_BUNDLE_BYTES + 1))
    inner = cbor.decode(value[2])
    inner[0] = "troth.credential"
    assert inner[0] != BUNDLE_TYPE
    with pytest.raises(PolicyError) as raised:
        verify_bundle(
            cbor.encode([*value[:2], cbor.encode(inner), *value[3:]]),
            verifier=world.verifier,
            feeds=world.feeds(),
            now=T + 5,
        )
    assert raised.value.reason is PolicyFailure.UNKNOWN_TYPE


def test_a_non_canonical_tool_schema_is_refused(world: GatesWorld) -> None:
    tools = {"ping": '{ "type": "object" }'}
    body = body_of(world, world.authority.identifier, tools=tools, policies="")
    refused(P.MALFORMED, world, forged(world, body, signer="authority", chain=None))


def test_stale_feed_is_refused_and_denies(world: GatesWorld) -> None:
    refused(P.STALE_FEED, world, world.bundle(), now=T + 400)
    store = world.store(world.bundle())
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    request = ToolCall("lookup_order", {"order_id": "o1"})
    assert point.decide(member, request, now=T + 290).allowed
    stale = point.decide(member, request, now=T + 301)
    assert (stale.allowed, stale.outcome) == (False, Outcome.NOT_IN_FORCE)
    world.refresh_feed(T + 300)
    assert point.decide(member, request, now=T + 301).allowed


def test_no_bundle_and_an_expired_bundle_deny(world: GatesWorld) -> None:
    member = world.credential(world.support_chain, world.support)
    request = ToolCall("lookup_order", {"order_id": "o1"})
    empty = world.point(BundleStore(world.verifier))
    decision = empty.decide(member, request, now=T + 10)
    assert (decision.allowed, decision.reason) == (False, "denied: no policy bundle")
    store = world.store(world.bundle(ttl=100))
    world.refresh_feed(T + 100)
    expired = world.point(store).decide(member, request, now=T + 100)
    assert (expired.allowed, expired.reason) == (False, "denied: the bundle expired")


def test_rollback_is_refused_and_a_repeat_is_a_no_op(world: GatesWorld) -> None:
    first = world.bundle(revision=1)
    # the lowest digest of 8 bundles of revision 2, so one of higher digest is found below
    seconds = (world.bundle(revision=2, policies=ALL, ttl=86_400 - i) for i in range(8))
    second = min(seconds, key=sha256)
    store = world.store(first, second)
    # another bundle of revision 2 whose digest is higher than the held one's: the lower digest
    # wins at one revision (docs/policy.md, "Bundles on a node": review 41d, bundles 2)
    variants = (world.bundle(revision=2, ttl=86_400 - i) for i in range(64))
    same = next(data for data in variants if sha256(data) > sha256(second))
    for data, reason in ((first, P.ROLLBACK), (same, P.SAME_REVISION)):
        with pytest.raises(PolicyError) as caught:
            store.accept(data, feeds=world.feeds(), now=T + 5)
        assert caught.value.reason is reason
    assert store.accept(second, feeds=world.feeds(), now=T + 5).body.revision == 2
    active = store.active(world.authority.identifier)
    assert active is not None
    assert active.bundle.compiled.policy_ids == ("all",)


def test_a_concurrent_swap_never_mixes_two_bundles(world: GatesWorld) -> None:
    def revision(n: int) -> bytes:
        policy = f'@id("rev-{n}") permit(principal, action in Action::"invoke", resource);'
        return world.bundle(revision=n, policies=policy)

    bundles = [revision(n) for n in range(1, 31)]
    store = world.store(bundles[0])
    point = world.point(store)
    member = world.credential(world.support_chain, world.support)
    request = ToolCall("refund", {"order_id": "o1", "amount": 20})
    seen: list[list[tuple[int | None, tuple[str, ...]]]] = [[] for _ in range(4)]
    done = threading.Event()

    def decide(out: list[tuple[int | None, tuple[str, ...]]]) -> None:
        while not done.is_set():
            decision = point.decide(member, request, now=T + 10)
            assert decision.allowed
            out.append((decision.revision, decision.policies))

    threads = [threading.Thread(target=decide, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for data in bundles[1:]:
        store.accept(data, feeds=world.feeds(), now=T + 5)
    done.set()
    for thread in threads:
        thread.join()
    for out in seen:
        assert out
        assert all(policies == (f"rev-{rev}",) for rev, policies in out)
        revisions = [rev or 0 for rev, _ in out]
        assert revisions == sorted(revisions)  # never back to an older bundle


def test_persisted_bundles_reload_and_never_roll_back_across_stores(
    world: GatesWorld, tmp_path: Path
) -> None:
    db = SqliteDatabase(tmp_path / "node.db")
    first = BundleStore(world.verifier, SqliteBundleTable(db))
    first.accept(world.bundle(revision=2), feeds=world.feeds(), now=T + 5)
    second = BundleStore(world.verifier, SqliteBundleTable(db))  # another process, not reloaded
    with pytest.raises(PolicyError) as caught:
        second.accept(world.bundle(revision=1), feeds=world.feeds(), now=T + 5)
    assert caught.value.reason is P.ROLLBACK
    assert [b.body.revision for b in second.reload(now=T + 6)] == [2]
    member = world.credential(world.support_chain, world.support)
    decision = world.point(second).decide(
        member, ToolCall("lookup_order", {"order_id": "o"}), now=T + 10
    )
    assert (decision.allowed, decision.revision) == (True, 2)
    db.execute("UPDATE gates_policy_bundles SET bundle = ?", (b"junk",))
    assert BundleStore(world.verifier, SqliteBundleTable(db)).reload(now=T + 6) == []
    db.close()


def test_revoking_the_signer_after_acceptance_stops_its_bundle(world: GatesWorld) -> None:
    store = world.store(world.bundle(by_admin=True))
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 10)
    with pytest.raises(PolicyError) as caught:
        store.engine(world.authority.identifier, feed=world.feed, now=T + 11)
    assert caught.value.reason is P.SIGNER_REVOKED


def decode_chain_hash(chain: bytes) -> bytes:
    """The hash of a chain's last credential (what a revocation names)."""
    return CredentialChain.decode(chain).credentials[-1].hash


def test_signer_histories_are_observed_only_once_authorised(world: GatesWorld) -> None:
    seen: list[object] = []
    store = BundleStore(world.verifier, known=lambda identity: seen.append(identity.identifier))
    intruder = forged(world, body_of(world, world.support.identifier), signer="support", chain=None)
    with pytest.raises(PolicyError) as raised:
        store.accept(intruder, feeds=world.feeds(), now=T + 5)
    assert raised.value.reason is PolicyFailure.NOT_POLICY_ADMIN
    assert seen == []  # an unauthorised signer's history is not stored
    store.accept(world.bundle(by_admin=True), feeds=world.feeds(), now=T + 5)
    assert seen == [world.admin.identifier]

    def forked(identity: VerifiedIdentity) -> None:
        raise IdentityError(IdentityFailure.FORK, str(identity.identifier))

    with pytest.raises(PolicyError) as caught:
        BundleStore(world.verifier, known=forked).accept(
            world.bundle(by_admin=True), feeds=world.feeds(), now=T + 5
        )
    assert caught.value.reason is P.SIGNER_INVALID


def test_a_revocation_after_a_decision_denies_the_next_one(world: GatesWorld) -> None:
    """The decision point remembers the (credential, feed) pairs and the store the (bundle,
    feed) pair that passed their feed checks: a feed is immutable, so only a newer feed (another
    object) is checked again. A revocation between two calls is in the newer feed, so the second
    call is denied: the member's credential revoked, then (a fresh credential's calls allowed
    again) the bundle's signer."""
    store = world.store(world.bundle(by_admin=True))
    point = world.point(store)
    request = ToolCall("lookup_order", {"order_id": "o1"})
    member = world.credential(world.support_chain, world.support)
    assert point.decide(member, request, now=T + 11).allowed
    assert point.decide(member, request, now=T + 11).allowed  # the same feed: remembered
    link = CredentialChain.decode(world.support_chain).credentials[-1].hash
    world.revoke(RevocationKind.CREDENTIAL, link, now=T + 12)
    denied = point.decide(member, request, now=T + 12)
    assert (denied.allowed, denied.outcome) == (False, Outcome.CREDENTIAL)
    assert "revoked" in denied.reason

    other = world.member_credential(*world.new_member())
    assert point.decide(other, request, now=T + 12).allowed
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 13)
    refused = point.decide(other, request, now=T + 13)
    assert (refused.allowed, refused.outcome) == (False, Outcome.NOT_IN_FORCE)
    assert "revoked" in refused.reason
