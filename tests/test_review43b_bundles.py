"""Review 43b, bundles: adversarial re-review of review 42b's lower-digest rule (docs/policy.md,
"Two bundles of one revision").

bundles 1: anyone who can push to a node (a member, or any peer of the policy service) sends a
forged bundle naming the authority and the held revision, with a broken signature and a digest
above the held one's. It was refused SAME_REVISION on its decoding alone and recorded as a
conflict (`BundleStore.conflicts`, a node's status) and logged as two signers at one revision:
an operator was told the authority signed twice when nobody did. Refused for what it is now:
a same-revision bundle is verified before it is recorded (was a strict xfail until
`BundleStore.accept` refused on the decoding alone only a conflict it had already seen).

bundles 2: a peer pushes the genuine higher-digest bundle of the held revision again and again:
each push logged a warning, a log flood at a push's cost. The conflict is logged once, when it
is first seen (was a strict xfail until `NodePolicies.accept` logged only a new conflict,
`BundleStore.conflicts_noted`, the store remembering MAX_POLICY_CONFLICTS_SEEN per authority).

bundles 3: of two bundles of one revision the lower digest won whatever its lifetime, and an
expired held bundle yielded only to a higher revision: a short-lived one (a policy-admin's
lives an hour by default) that expired left every node denying until a new revision, the
other bundle of that revision still valid. Fixed (the lead's decision; was a strict xfail): an
expired held bundle yields to a verified bundle of its own revision in force, whatever its
digest (`BundleStore.accept`; between two in force the lower digest still wins, and never to a
lower revision), a table holding the expired one not loaded at a restart included
(`BundleStore._replace_stored`); a node whose bundle expired pulls with the revision below its
own (`get [authority, revision - 1]`, which every node answers), and a node answers no bundle
expired at its clock. The tests after it pin the attacks tried on the fix: a lower revision
(rollback), the expired one replayed (no swap back, no new conflict), a forgery, bytes that
are no bundle, a revoked signer's or a pre-rotation chain's bundle, and a pull asking again
and again.

The other tests pin refuted attempts: a same-revision bundle of a lower digest signed by a
policy-admin since revoked, or one whose chain carries the authority's history from before its
rotation (a thief's, or a replay of one), is refused for what it is and the held one kept; an
authority's node that refuses the two-argument `get` too is asked once more a round, not
again and again.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import POLICIES, TOOLS, GatesWorld, T, make_world, rotate, superseding
from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_gates_bundles import decode_chain_hash
from tests.test_gates_distribution import bundle, install_on_hub
from tests.test_review42b_bundles import (
    TIGHTER,
    BeforeDigests,
    below,
    held_high,
    pair,
    signature_altered,
)
from troth.credentials import RevocationKind
from troth.crypto import sha256
from troth.errors import PolicyError, PolicyFailure, RemoteError
from troth.gates import BundleConflict, BundleStore, MemoryBundleTable, create_bundle, decode_bundle
from troth.node.access import AnyAuthenticated
from troth.node.services import Method, RequestContext, call
from troth.node.services.policy import POLICY, PolicyService, _answers

_P = PolicyFailure


def test_a_forged_higher_digest_bundle_is_refused_for_its_signature_not_recorded() -> None:
    """The held revision-6 bundle's bytes with its signature altered and a digest above the
    held one's: refused BAD_SIGNATURE (not SAME_REVISION), no conflict recorded."""
    world = make_world()
    low, high = pair(world)
    store = world.store(low)
    altered = signature_altered(low)
    forged = None
    for i in range(256):
        data = altered(i)
        if sha256(data) > sha256(low):
            forged = data
            break
    assert forged is not None
    with pytest.raises(PolicyError) as refused:
        store.accept(forged, feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.BAD_SIGNATURE
    assert store.conflicts() == []
    with pytest.raises(PolicyError) as genuine:  # the genuine higher one is still recorded
        store.accept(high, feeds=world.feeds(), now=T + 5)
    assert genuine.value.reason is PolicyFailure.SAME_REVISION
    conflict = BundleConflict(world.authority.identifier, 6, sha256(low), sha256(high))
    assert store.conflicts() == [conflict]


def test_a_lower_digest_forgery_is_refused_and_not_recorded() -> None:
    """Refuted: the same forgery with a digest below the held one's goes to verification and
    is refused BAD_SIGNATURE, recording nothing."""
    world = make_world()
    kept = held_high(world)
    store = world.store(kept)
    with pytest.raises(PolicyError) as refused:
        store.accept(below(kept, signature_altered(kept)), feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.BAD_SIGNATURE
    assert store.conflicts() == []


def test_a_replayed_higher_digest_bundle_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Member b holds revision 2 of the lower digest; the higher is pushed to it 20 times:
    each refused SAME_REVISION, one warning logged."""

    async def test(net: MemNet) -> None:
        b = await net.member("agent-b")
        low, high = sorted((bundle(net, 2), bundle(net, 2, policies=TIGHTER)), key=sha256)
        b.policies.accept(low, now=net.clock.now())
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="troth.node.policy"):
            for _ in range(20):
                with pytest.raises(PolicyError) as refused:
                    b.policies.accept(high, now=net.clock.now())
                assert refused.value.reason is PolicyFailure.SAME_REVISION
        said = [r for r in caplog.records if sha256(high).hex() in r.getMessage()]
        assert len(said) == 1

    run_memnet(test, tmp_path)


def above(low: bytes, make: Callable[[int], bytes]) -> bytes:
    """The first of `make(0)`, `make(1)`, ... whose digest is higher than `low`'s (one in
    4,097 lows is above 4,096 variants; with 256, one in 257 was: a flake)."""
    for i in range(4_096):
        data = make(i)
        if sha256(data) > sha256(low):
            return data
    raise AssertionError("no variant above")


def test_a_lower_digest_bundle_of_a_revoked_admin_is_refused() -> None:
    """Refuted: the admin's revision-6 bundle, its credential revoked since, offered to a node
    holding the authority's revision 6 of a higher digest: refused SIGNER_REVOKED, the held one
    kept, no conflict recorded."""
    world = make_world()
    admins = world.bundle(revision=6, now=T + 1, by_admin=True, policies=TIGHTER)
    held = above(admins, lambda i: world.bundle(revision=6, now=T, ttl=86_400 - i))
    world.revoke(RevocationKind.CREDENTIAL, decode_chain_hash(world.admin_chain), now=T + 2)
    store = world.store(held)
    with pytest.raises(PolicyError) as refused:
        store.accept(admins, feeds=world.feeds(), now=T + 5)
    assert refused.value.reason is PolicyFailure.SIGNER_REVOKED
    active = store.active(world.authority.identifier)
    assert active is not None
    assert active.bundle.data == held
    assert store.conflicts() == []


def test_a_lower_digest_bundle_from_before_the_authoritys_rotation_is_refused() -> None:
    """Refuted: the admin's revision-6 bundle, its chain carrying the authority's history from
    before the authority rotated, offered to a node holding the rotated authority's revision 6
    of a higher digest: refused SIGNER_SUPERSEDED, the held one kept."""
    world = make_world()
    admins = world.bundle(revision=6, now=T + 1, by_admin=True, policies=TIGHTER)
    history, authority = rotate(world, world.authority, T + 20)
    world.feed = superseding(authority, history, world.authority, T + 30)
    held = above(
        admins,
        lambda i: create_bundle(
            authority.signer,
            authority=authority.identifier,
            policies=POLICIES,
            schema="",
            tools=TOOLS,
            revision=6,
            now=T + 40,
            ttl=86_400 - i,
        ),
    )
    store = BundleStore(world.verifier)
    store.accept(held, feeds=world.feeds(), now=T + 50)
    with pytest.raises(PolicyError) as refused:
        store.accept(admins, feeds=world.feeds(), now=T + 50)
    assert refused.value.reason is PolicyFailure.SIGNER_SUPERSEDED
    active = store.active(authority.identifier)
    assert active is not None
    assert active.bundle.data == held
    assert store.conflicts() == []


class AlwaysOld(BeforeDigests):
    """An authority's node that answers every `get`, two arguments too, with the error a node
    from before review 42b gives three."""

    async def get(self, arguments: Any, context: RequestContext) -> bytes:
        self.asked.append(len(arguments))
        raise RemoteError("get arguments: expected 2 elements, got 3")


def test_a_node_refusing_both_gets_is_asked_twice_a_round(tmp_path: Path) -> None:
    """Refuted: the authority's node answers the two-argument retry with the same error: b
    asks once more, not again and again, and takes nothing (its revision 1 stays)."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        b.policies.accept(bundle(net, 1), now=net.clock.now())
        hub = net.hub
        assert hub is not None
        hub.router.unregister(POLICY)
        old = AlwaysOld(bundle(net, 2))
        hub.add_service(old)
        service = b.host.services["policy"]
        assert isinstance(service, PolicyService)
        assert await service.pull() == []
        assert old.asked == [3, 2]
        held = b.policies.held(authority)
        assert held is not None
        assert held.bundle.body.revision == 1

    run_memnet(test, tmp_path)


def test_an_expired_short_lived_lower_digest_bundle_gives_way_to_its_revision_in_force() -> None:
    """bundles 3: the authority's revision 6 lives a day; a policy-admin signs another
    revision 6 living an hour (an admin's bundle lives at most as long as its chain, an hour
    by default), its digest the lower. Every node swaps to the admin's, and once it expires
    the authority's, still valid for most of a day, is refused SAME_REVISION: every call of the
    authority's members is denied (`expired`) until someone signs revision 7 (was a strict
    xfail). Fixed: an expired held bundle yields to the bundle of its revision in force."""
    world = make_world()
    admins = world.bundle(revision=6, now=T + 1, by_admin=True, policies=TIGHTER, ttl=3_600)
    mine = above(admins, lambda i: world.bundle(revision=6, now=T, ttl=86_400 - i))
    store = world.store(mine)
    store.accept(admins, feeds=world.feeds(), now=T + 5)
    world.refresh_feed(T + 4_000)
    with pytest.raises(PolicyError) as expired:
        store.engine(world.authority.identifier, feed=world.feed, now=T + 4_000)
    assert expired.value.reason is PolicyFailure.EXPIRED
    assert store.accept(mine, feeds=world.feeds(), now=T + 4_000).data == mine
    engine = store.engine(world.authority.identifier, feed=world.feed, now=T + 4_000)
    assert engine.digest == sha256(mine).hex()


def short_and_long(world: GatesWorld) -> tuple[bytes, bytes]:
    """The admin's revision 6 living an hour and, of a higher digest, the authority's living
    a day (bundles 3's pair). Both are taken low among variants of themselves (the lowest of
    4, the lowest of 16 above), so that a test finds a bundle above either at once: the first
    variant above, uniform over the digests above, was now and then so high that no one of 256
    variants was above it (a flake, "no variant above")."""
    admins = min(
        (
            world.bundle(revision=6, now=T + 1, by_admin=True, policies=TIGHTER, ttl=3_600 - i)
            for i in range(4)
        ),
        key=sha256,
    )
    variants = (world.bundle(revision=6, now=T, ttl=86_400 - i) for i in range(4_096))
    higher = (data for data in variants if sha256(data) > sha256(admins))
    mine = min(itertools.islice(higher, 16), key=sha256)
    return admins, mine


def test_an_expired_bundle_never_yields_to_a_lower_revision() -> None:
    """bundles 3, no rollback: the held revision 6 expired, a revision 5 in force is refused
    ROLLBACK and the expired one stays held (the node denies until a revision 6 or higher in
    force comes)."""
    world = make_world()
    admins, _ = short_and_long(world)
    older = world.bundle(revision=5, now=T, ttl=86_400)
    store = world.store(admins)
    world.refresh_feed(T + 4_000)
    with pytest.raises(PolicyError) as refused:
        store.accept(older, feeds=world.feeds(), now=T + 4_000)
    assert refused.value.reason is PolicyFailure.ROLLBACK
    active = store.active(world.authority.identifier)
    assert active is not None
    assert active.bundle.data == admins


def test_the_expired_bundle_replayed_after_its_replacement_is_refused_expired() -> None:
    """bundles 3, no swapping back: once the authority's bundle replaced the admin's expired
    one, the admin's pushed again 20 times is refused EXPIRED on its decoding each time (the
    node keeps the one in force, notes no new conflict), and a third bundle of revision 6 of
    a higher digest than the one now held is refused SAME_REVISION (the held one is in
    force)."""
    world = make_world()
    admins, mine = short_and_long(world)
    store = world.store(mine, admins)
    world.refresh_feed(T + 4_000)
    store.accept(mine, feeds=world.feeds(), now=T + 4_000)
    noted = store.conflicts_noted
    for _ in range(20):
        with pytest.raises(PolicyError) as refused:
            store.accept(admins, feeds=world.feeds(), now=T + 4_000)
        assert refused.value.reason is PolicyFailure.EXPIRED
    assert store.conflicts_noted == noted
    active = store.active(world.authority.identifier)
    assert active is not None
    assert active.bundle.data == mine
    third = above(mine, lambda i: world.bundle(revision=6, now=T + 2, ttl=86_000 - i))
    with pytest.raises(PolicyError) as same:
        store.accept(third, feeds=world.feeds(), now=T + 4_000)
    assert same.value.reason is PolicyFailure.SAME_REVISION


def test_an_expired_bundle_yields_to_no_forgery_nor_revoked_signer() -> None:
    """bundles 3, hostile inputs: the authority's revision 6 living ten minutes held and
    expired; another revision 6 of the authority with its signature altered is refused
    BAD_SIGNATURE, bytes that are no bundle MALFORMED, and the admin's revision 6 (in force,
    its digest higher) once its credential is revoked SIGNER_REVOKED; the expired one stays
    held, no conflict recorded."""
    world = make_world()
    held = world.bundle(revision=6, now=T, ttl=600)
    store = world.store(held)
    admins = above(
        held,
        lambda i: world.bundle(
            revision=6, now=T + 1, by_admin=True, policies=TIGHTER, ttl=3_600 - i
        ),
    )
    forged = signature_altered(world.bundle(revision=6, now=T + 1))(0)
    world.revoke(RevocationKind.CREDENTIAL, decode_chain_hash(world.admin_chain), now=T + 700)
    refusals = []
    for data in (forged, b"\x87" + held[1:40], admins):
        with pytest.raises(PolicyError) as refused:
            store.accept(data, feeds=world.feeds(), now=T + 700)
        refusals.append(refused.value.reason)
    assert refusals == [_P.BAD_SIGNATURE, _P.MALFORMED, _P.SIGNER_REVOKED]
    active = store.active(world.authority.identifier)
    assert active is not None
    assert active.bundle.data == held
    assert store.conflicts() == []


def test_an_expired_bundle_yields_to_no_bundle_from_before_the_rotation() -> None:
    """bundles 3, a replay: the rotated authority's revision 6 living ten minutes held and
    expired; the admin's revision 6 (in force), its chain carrying the authority's history
    from before the rotation, is refused SIGNER_SUPERSEDED and the expired one stays held."""
    world = make_world()
    admins = world.bundle(revision=6, now=T + 1, by_admin=True, policies=TIGHTER)
    history, authority = rotate(world, world.authority, T + 20)
    world.feed = superseding(authority, history, world.authority, T + 30)
    held = create_bundle(
        authority.signer,
        authority=authority.identifier,
        policies=POLICIES,
        schema="",
        tools=TOOLS,
        revision=6,
        now=T + 40,
        ttl=600,
    )
    store = BundleStore(world.verifier)
    store.accept(held, feeds=world.feeds(), now=T + 50)
    world.feed = superseding(authority, history, world.authority, T + 690)
    with pytest.raises(PolicyError) as refused:
        store.accept(admins, feeds=world.feeds(), now=T + 700)
    assert refused.value.reason is PolicyFailure.SIGNER_SUPERSEDED
    active = store.active(authority.identifier)
    assert active is not None
    assert active.bundle.data == held


def test_a_store_restarted_after_its_bundle_expired_takes_the_one_in_force() -> None:
    """bundles 3 across a restart: the table holds the admin's revision 6 (expired at the
    restart, so it does not load); the authority's revision 6, in force, is taken in its
    place (it was refused ROLLBACK, 'a newer revision is stored', for good)."""
    world = make_world()
    admins, mine = short_and_long(world)
    table = MemoryBundleTable()
    BundleStore(world.verifier, table).accept(admins, feeds=world.feeds(), now=T + 5)
    world.refresh_feed(T + 4_000)
    restarted = BundleStore(world.verifier, table)
    assert restarted.reload(now=T + 4_000) == []
    assert restarted.accept(mine, feeds=world.feeds(), now=T + 4_000).data == mine
    assert table.load(world.authority.identifier.digest) == mine
    engine = restarted.engine(world.authority.identifier, feed=world.feed, now=T + 4_000)
    assert engine.digest == sha256(mine).hex()
    again = BundleStore(world.verifier, table)  # the next start loads the one in force
    assert [b.data for b in again.reload(now=T + 4_001)] == [mine]


def short_bundle(net: MemNet, revision: int, below_digest: bytes) -> bytes:
    """A bundle of the hub's authority at `revision` living ten minutes, its digest below
    `below_digest`."""
    hub = net.hub
    assert hub is not None
    now = net.clock.now()
    signer = hub.node.identities.signer("hub", now=now)
    authority = net.authority.identifier

    def make(i: int) -> bytes:
        return create_bundle(
            signer,
            authority=authority,
            policies=TIGHTER,
            schema="",
            tools=TOOLS,
            revision=revision,
            now=now,
            ttl=600 - i,
        )

    for i in range(256):
        data = make(i)
        if sha256(data) < below_digest:
            return data
    raise AssertionError("no variant below")


class Recording:
    """An authority's node answering `get` as a current one does, holding `data` (in force),
    recording each `get`'s arguments after the authority."""

    name = "policy"
    oneway: Method | None = None

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.arguments: list[list[Any]] = []
        self.methods: Mapping[str, Method] = {"get": Method(self.get, AnyAuthenticated())}

    async def maintain(self, now: int) -> None:
        """Nothing."""

    def status(self) -> dict[str, Any]:
        return {}

    async def get(self, arguments: Any, context: RequestContext) -> bytes | None:
        self.arguments.append(list(arguments[1:]))
        body = decode_bundle(self.data)
        digest = None if len(arguments) == 2 else arguments[2]
        if _answers(body.revision, sha256(self.data), arguments[1], digest):
            return self.data
        return None


def _not_lowest(net: MemNet) -> bytes:
    """`bundle(net, 2)` living an hour, give or take seconds: one whose digest is not among the
    lowest sixteenth, so `short_bundle` finds a variant below it (the hub's key is new in each
    run: a digest under 2**248 left 256 variants about one chance in two, a flaky test)."""
    for i in range(256):
        data = bundle(net, 2, ttl=3600 - i)
        if sha256(data)[0] >= 0x10:
            return data
    raise AssertionError("no variant above")


def test_a_node_whose_bundle_expired_pulls_the_one_in_force_once(tmp_path: Path) -> None:
    """bundles 3 over the network: member b holds the lower-digest revision 2 living ten
    minutes, the authority's node the other revision 2 living an hour. Eleven minutes on, b's
    round asks for what is newer than revision 1 (not the held revision and digest, which
    the authority's node would answer null) and takes the one in force; the next round asks
    with that one's revision and digest, and is answered nothing (no fetch again and again)."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        kept = _not_lowest(net)
        short = short_bundle(net, 2, sha256(kept))
        b.policies.accept(short, now=net.clock.now())
        hub = net.hub
        assert hub is not None
        hub.router.unregister(POLICY)
        node = Recording(kept)
        hub.add_service(node)
        service = b.host.services["policy"]
        assert isinstance(service, PolicyService)
        assert await service.pull() == []  # in force: the held revision and digest asked
        net.clock.advance(660)
        await b.refresh_feeds()
        assert [v.data for v in await service.pull()] == [kept]
        assert await service.pull() == []
        assert node.arguments == [[2, sha256(short)], [1], [2, sha256(kept)]]
        held = b.policies.held(authority)
        assert held is not None
        assert held.bundle.data == kept

    run_memnet(test, tmp_path)


def test_a_node_answers_no_expired_bundle(tmp_path: Path) -> None:
    """bundles 3: the hub holds a revision 2 living ten minutes; eleven minutes on, its `get`
    answers null to a node asking for anything newer than revision 0 or 1 (every node would
    refuse it: fetching it round after round would cost a bundle each time)."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        short = short_bundle(net, 2, b"\xff" * 32)
        await install_on_hub(net, short)
        end = await b.channel_to(route(HUB))
        assert await call(b.router, (end.enc, POLICY), "get", [authority.digest, 1]) == short
        net.clock.advance(660)
        hub = net.hub
        assert hub is not None
        await hub.refresh_feeds()
        await b.refresh_feeds()
        end = await b.channel_to(route(HUB))
        for revision in (0, 1):
            asked = [authority.digest, revision]
            assert await call(b.router, (end.enc, POLICY), "get", asked) is None

    run_memnet(test, tmp_path)
