"""Review 54h, bundles: adversarial review of how policy bundles are made, signed, distributed
and installed (docs/policy.md, "Bundles on a node", "Distribution").

bundles 1: a member (anyone the policy service's `push` admits) sends a stream of junk: bundles
naming a trusted authority, MAX_TOOLS tool schemas each, the signature broken. Each tool schema
was parsed and canonicalised three times (the service's decoding for the authority, the store's
for the rollback check, verification's) before the signature was looked at: ~0.3 s of the
node's one storage thread per push (a 527 KB bundle of 512 ~1 KB schemas; CBOR alone decodes it
in under a millisecond), so a member's 16 requests in flight, pushed again as each is refused,
held the storage thread every node service shares. A bundle's claims are now read without its
tool schemas (`troth.gates.bundles.bundle_claims`) and the schemas checked only once the
signature is the signer's.

bundles 2: a peer sends the held bundle again and again (10,000 times): each push parsed every
tool schema twice before the store saw the bytes were the ones it held. The same: a replay
costs the claims' decoding only.

bundles 3: `troth policy push FILE --node NODE` on a member's node (docs/policy.md,
"Distribution": "Any node can take it") activated the bundle there and pushed it to that node's
subscribers only, normally none (nodes pull from their authority's node): the authority's
node and every other member went on deciding by the older bundle, each pulling from the
authority's node and told nothing newer, until it expired (up to MAX_POLICY_BUNDLE_TTL, 90
days), while the CLI said "the running node distributes it". A node now passes a bundle
installed on it on to its authority's node (a push, over a secure channel, as a member), which
distributes it to the fleet. So is a bundle installed while the node was stopped, once it
starts and has pulled (`PolicyService.started`): it loaded it from its table at start, which
passed nothing on.

bundles 4: a thief with a policy-admin's key pushes a short-lived bundle at the members' top
revision (MAX_MEMBER_POLICY_REVISION); the authority revokes the admin, which puts that bundle
out of force for good, so a bundle of any revision issued since replaces it (docs/policy.md,
"Bundles on a node": "say, revision 2"). A node restarted once the thief's bundle had expired
did not load it (expired), so nothing was held to judge out of force, and every replacement
below the stored revision was refused ROLLBACK ("a newer revision is stored: reload") for
good: the node denied every call until a bundle above the thief's revision came (never, for a
stolen authority key's bundle at the top revision). The table's bundle, not loaded, is now
judged as the held one would be: out of force for good by the current feed, it gives way to
a verified bundle issued since it.

bundles 5: two bundles of one revision (two signers: docs/policy.md, "Two bundles of one
revision") may hold different texts under the same policy ids, and a node replaces the one it
holds by the one of the lower digest: a call allowed under the first and one under the second
were recorded alike ("revision 6, policy refund"), and an auditor could not tell which text
allowed which. A decision's record names the deciding bundle's digest too (in its `result`
disclosure, beside the reason, errors and policy ids: the signed record format unchanged).

bundles 6: a node whose table's bundle is not active (restarted after it expired: the case of
bundles 4) had nothing held to refuse a rollback on its claims: a member's replay of a genuine
older bundle, still unexpired, was verified in full at every push, its policies compiled and
validated by Cedar (a child process for a large set), before the table refused it. Refused now
on its claims and the table's bundle's, as a held one would be: a lower revision not issued
since the stored bundle is no replacement of it, in force or not.

bundles 7: a node that cannot pull its authority's bundles (that node down, or serving no
policy service) keeps deciding by the bundle it holds until it expires (up to
MAX_POLICY_BUNDLE_TTL, 90 days), and only its log said so, a warning each round: its status
(`troth node status`: the policy service's) and `troth policy show` said the bundle was in
force and nothing of the pulls. The policy service's status now says, per authority, when a
pull last succeeded and, while they fail, since when and why (`pulls`).

bundles 8: the authority's node restarted on a restored copy of its node.db (a backup) holds
an older bundle than its members, who took the newer one from it: it pulls from nobody, and
its members pull with their newer revision and are answered nothing, so it decided by the
older bundle, and gave it to every new member, until a newer one was installed on it. A `get`
asking a revision above the one a node holds now makes it ask the requester (over the
requester's channel, `get` as any node asks) for its bundle, verified as any; so does one
naming its revision with a lower digest (the bundle every node keeps, which the authority's
node, asked with it, did not take).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.gates import POLICIES, TOOLS, T, make_world, rotate, superseding
from tests.support.nodes import MemNet, run_memnet
from tests.test_gates_distribution import bundle, revision_of, until
from tests.test_review23c_trace import NOW, recorded_point
from tests.test_review42b_bundles import signature_altered
from troth import limits
from troth.credentials import RevocationKind
from troth.crypto import sha256
from troth.errors import PolicyError, PolicyFailure
from troth.gates import BundleStore, MemoryBundleTable, ToolCall, create_bundle
from troth.gates import bundles as bundles_module
from troth.node.control import perform
from troth.node.runtime import NodeRuntime
from troth.node.services.node_policies import NodeFeeds, NodePolicies
from troth.node.services.policy import PolicyService
from troth.trace.signing import open_envelope

EXTRA = {**TOOLS, **{f"extra_{i}": TOOLS["lookup_order"] for i in range(8)}}


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many tool schemas troth.gates.bundles canonicalised since the last call."""
    count = [0]
    real = bundles_module.canonical_json  # type: ignore[attr-defined]

    def counting(value: Any) -> str:
        count[0] += 1
        return real(value)

    monkeypatch.setattr(bundles_module, "canonical_json", counting)

    def since() -> int:
        done, count[0] = count[0], 0
        return done

    return since


def _service(accept: Callable[[bytes, int], Any]) -> Any:
    """A stand-in for a PolicyService whose node accepts with `accept` (`_accept_from` reads
    `self.policies.accept` only)."""
    policies = SimpleNamespace(accept=lambda data, *, now, confirms=True: (accept(data, now), True))
    return SimpleNamespace(policies=policies)


def test_a_junk_push_parses_no_tool_schema(parsed: Callable[[], int]) -> None:
    """bundles 1: a bundle of the trusted authority with 11 tools and a broken signature,
    pushed through the policy service's acceptance: refused BAD_SIGNATURE without one tool
    schema parsed."""
    world = make_world()
    held = world.bundle(revision=1, tools=EXTRA)
    store = world.store(held)
    junk = signature_altered(world.bundle(revision=2, tools=EXTRA))(0)
    service = _service(lambda data, now: store.accept(data, feeds=world.feeds(), now=now))
    parsed()
    with pytest.raises(PolicyError) as refused:
        PolicyService._accept_from(service, junk, None, "test", now=T + 5)
    assert refused.value.reason is PolicyFailure.BAD_SIGNATURE
    assert parsed() == 0


def test_the_held_bundle_pushed_again_parses_no_tool_schema(parsed: Callable[[], int]) -> None:
    """bundles 2: the held bundle pushed 100 times through the policy service's acceptance:
    each a no-op, no tool schema parsed."""
    world = make_world()
    held = world.bundle(revision=1, tools=EXTRA)
    store = world.store(held)
    service = _service(lambda data, now: store.accept(data, feeds=world.feeds(), now=now))
    parsed()
    for _ in range(100):
        verified, _new = PolicyService._accept_from(service, held, None, "test", now=T + 5)
        assert verified is store.active(world.authority.identifier).bundle  # type: ignore[union-attr]
    assert parsed() == 0


def test_a_genuine_new_bundle_parses_its_schemas_once(parsed: Callable[[], int]) -> None:
    """What the fix keeps: a genuine newer bundle is verified in full, each of its 11 tool
    schemas parsed once, and decides."""
    world = make_world()
    store = world.store(world.bundle(revision=1, tools=EXTRA))
    newer = world.bundle(revision=2, tools=EXTRA)
    service = _service(lambda data, now: store.accept(data, feeds=world.feeds(), now=now))
    parsed()
    verified, _new = PolicyService._accept_from(service, newer, None, "test", now=T + 5)
    assert verified.body.revision == 2
    assert sorted(verified.body.tools) == sorted(EXTRA)
    assert parsed() == len(EXTRA)


def test_a_bundle_installed_on_a_members_node_reaches_the_fleet(tmp_path: Path) -> None:
    """bundles 3: revision 1 installed on member b's node (`troth policy push --node b`: the
    table, then `policy.reload`) reaches the authority's node, then member c at its next
    round."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        c = await net.member("agent-c")
        hub = net.hub
        assert hub is not None
        await c.maintain()
        feeds = NodeFeeds(b.node, net.clock)
        cli = NodePolicies(b.node, feeds)
        cli.trust(feeds.anchors(), now=net.clock.now())
        cli.accept(bundle(net, 1), now=net.clock.now())
        await perform(b, "policy.reload", {})
        assert revision_of(b, authority) == 1
        await until(lambda: revision_of(hub, authority) == 1, timeout=3)
        await c.maintain()
        assert revision_of(c, authority) == 1

    run_memnet(test, tmp_path)


def test_a_bundle_installed_on_a_stopped_members_node_reaches_the_fleet(tmp_path: Path) -> None:
    """bundles 3: revision 2 installed on member b's node while it is stopped (the hub and b
    at revision 1) reaches the hub once b has started again."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        b = await net.member("agent-b")
        hub = net.hub
        assert hub is not None
        feeds = NodeFeeds(b.node, net.clock)
        cli = NodePolicies(b.node, feeds)
        cli.trust(feeds.anchors(), now=net.clock.now())
        first = bundle(net, 1)
        hub.policies.accept(first, now=net.clock.now())
        cli.accept(first, now=net.clock.now())
        await b.stop()
        cli.reload(now=net.clock.now())
        cli.accept(bundle(net, 2), now=net.clock.now())
        again = NodeRuntime(b.node, clock=net.clock, transport=net.transport("host-agent-b"))
        net.runtimes.append(again)
        await again.start()
        await until(lambda: revision_of(again, authority) == 2)
        await until(lambda: revision_of(hub, authority) == 2, timeout=3)

    run_memnet(test, tmp_path)


@pytest.mark.parametrize("restarted", [False, True])
def test_a_replacement_of_an_expired_thiefs_bundle_is_taken_after_a_restart(
    restarted: bool,
) -> None:
    """bundles 4: the thief's admin bundle at the members' top revision, an hour long; the
    admin revoked; the authority's replacement at revision 2, signed after the thief's bundle
    expired, is taken and decides, by the running store or by one restarted on its table."""
    world = make_world()
    thief = world.bundle(revision=limits.MAX_MEMBER_POLICY_REVISION, by_admin=True, now=T, ttl=3600)
    table = MemoryBundleTable()
    store = BundleStore(world.verifier, table)
    store.accept(thief, feeds=world.feeds(), now=T + 5)
    world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 3900)
    replacement = world.bundle(revision=2, now=T + 4000)
    if restarted:
        store = BundleStore(world.verifier, table)
        assert store.reload(now=T + 4001) == []  # the thief's bundle expired: not loaded
    verified = store.accept(replacement, feeds=world.feeds(), now=T + 4001)
    assert verified.body.revision == 2
    assert table.load(world.authority.identifier.digest) == replacement
    engine = store.engine(world.authority.identifier, feed=world.feed, now=T + 4002)
    assert engine.revision == 2


def test_a_restarted_node_takes_a_rotated_authoritys_replacement_of_a_top_revision() -> None:
    """bundles 4, the authority's own key stolen: the thief's bundle at the top revision (an
    hour long), the authority rotated (its feed supersedes the old history); a store
    restarted once that bundle expired takes the rotated authority's revision 2, signed
    since; before, no bundle could ever replace it there (none is above the top revision)."""
    world = make_world()
    table = MemoryBundleTable()

    def signed(signer: Any, revision: int, now: int, ttl: int) -> bytes:
        return create_bundle(
            signer,
            authority=world.authority.identifier,
            policies=POLICIES,
            schema="",
            tools=TOOLS,
            revision=revision,
            now=now,
            ttl=ttl,
        )

    stolen = signed(world.authority.signer, limits.MAX_POLICY_REVISION, T, 3600)
    BundleStore(world.verifier, table).accept(stolen, feeds=world.feeds(), now=T + 5)
    history, authority = rotate(world, world.authority, T + 20)
    world.feed = superseding(authority, history, world.authority, T + 3900)
    store = BundleStore(world.verifier, table)
    assert store.reload(now=T + 4001) == []
    replacement = signed(authority.signer, 2, T + 4000, 86_400)
    assert store.accept(replacement, feeds=world.feeds(), now=T + 4001).body.revision == 2
    assert store.engine(world.authority.identifier, feed=world.feed, now=T + 4002).revision == 2


@pytest.mark.parametrize("case", ["older", "in-force"])
def test_a_restarted_node_still_refuses_a_rollback_of_its_expired_bundle(case: str) -> None:
    """Attacks on the bundles 4 fix, refuted. A store restarted on a table whose bundle
    (revision 9, an hour long) expired: with the admin revoked, a genuine revision-2 bundle
    issued before it (a member's replay) is refused ROLLBACK; with the signer in force, a
    revision-2 bundle issued since it is refused ROLLBACK (an expired bundle never yields to a
    lower revision). The table keeps revision 9."""
    world = make_world()
    older = world.bundle(revision=2, now=T, ttl=86_400)
    stored = world.bundle(revision=9, by_admin=True, now=T + 10, ttl=3600)
    table = MemoryBundleTable()
    BundleStore(world.verifier, table).accept(stored, feeds=world.feeds(), now=T + 15)
    if case == "older":
        world.revoke(RevocationKind.IDENTITY, world.admin.identifier.digest, now=T + 3900)
        offered = older
    else:
        world.refresh_feed(T + 3900)
        offered = world.bundle(revision=2, now=T + 4000)
    store = BundleStore(world.verifier, table)
    store.reload(now=T + 4001)
    with pytest.raises(PolicyError) as refused:
        store.accept(offered, feeds=world.feeds(), now=T + 4001)
    assert refused.value.reason is PolicyFailure.ROLLBACK
    assert table.load(world.authority.identifier.digest) == stored


def test_each_record_names_the_bundle_that_decided(tmp_path: Path) -> None:
    """bundles 5: a refund of 50 allowed under revision 6 of one digest, then under the other
    revision-6 bundle (the lower digest, its refund-cap tighter): each record names its
    deciding bundle's digest."""
    world = make_world()
    point, log = recorded_point(tmp_path, world)
    store = world.store()
    point.bundles = store
    tighter = POLICIES.replace("<= 1000", "<= 100")
    low, high = sorted(
        (world.bundle(revision=6, now=T), world.bundle(revision=6, now=T + 1, policies=tighter)),
        key=sha256,
    )
    member = world.credential(world.support_chain, world.support)
    call = ToolCall("refund", {"order_id": "o1", "amount": 50})
    store.accept(high, feeds=world.feeds(), now=T + 5)
    assert point.decide(member, call, now=NOW).allowed
    store.accept(low, feeds=world.feeds(), now=T + 6)
    assert point.decide(member, call, now=NOW).allowed
    records = [open_envelope(entry.envelope)[0] for entry in log.stored()]
    assert [r.decision.bundle for r in records if r.decision is not None] == ["6", "6"]
    named = [json.loads(log.disclosures(r.id)["result"].value)["bundle"] for r in records]
    assert named == [sha256(high).hex(), sha256(low).hex()]


def test_a_restarted_node_refuses_a_replay_without_compiling_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bundles 6: the table holds revision 9 (expired, so not loaded at the restart); a member
    pushes the genuine revision 2, issued before it, five times: each refused ROLLBACK, its
    policies never compiled."""
    world = make_world()
    older = world.bundle(revision=2, now=T, ttl=86_400)
    stored = world.bundle(revision=9, now=T + 10, ttl=3600)
    table = MemoryBundleTable()
    BundleStore(world.verifier, table).accept(stored, feeds=world.feeds(), now=T + 15)
    world.refresh_feed(T + 3900)
    store = BundleStore(world.verifier, table)
    assert store.reload(now=T + 4001) == []
    compiled = [0]
    real = bundles_module.compile_policies  # type: ignore[attr-defined]

    def counting(*args: Any, **kwargs: Any) -> Any:
        compiled[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(bundles_module, "compile_policies", counting)
    for _ in range(5):
        with pytest.raises(PolicyError) as refused:
            store.accept(older, feeds=world.feeds(), now=T + 4001)
        assert refused.value.reason is PolicyFailure.ROLLBACK
    assert compiled[0] == 0


def test_the_status_says_when_pulls_fail(tmp_path: Path) -> None:
    """bundles 7: member b pulls from the hub (a success), then the hub stops: b's next round
    fails, and its policy status says since when and why; the success before is kept."""

    async def test(net: MemNet) -> None:
        authority = str(net.authority.identifier)
        b = await net.member("agent-b")
        hub = net.hub
        assert hub is not None
        service = b.host.services["policy"]
        await b.maintain()
        first = net.clock.now()
        pulled = service.status()["pulls"][authority]
        assert (pulled["succeeded_at"], pulled["failing_since"], pulled["error"]) == (
            first,
            None,
            None,
        )
        await hub.stop()
        net.clock.advance(30)
        await b.maintain()
        net.clock.advance(30)
        await b.maintain()
        failing = service.status()["pulls"][authority]
        assert failing["succeeded_at"] == first
        assert failing["failing_since"] == first + 30
        assert failing["error"]

    run_memnet(test, tmp_path)


def test_a_restored_authority_node_takes_the_newer_bundle_back_from_a_member(
    tmp_path: Path,
) -> None:
    """bundles 8: the hub and member b at revision 2; the hub restarted on a table holding
    revision 1 (a restored backup); b's next pull brings revision 2 back to the hub, and
    member c, new, gets revision 2."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        old, new = bundle(net, 1), bundle(net, 2)
        hub.policies.accept(new, now=net.clock.now())
        b = await net.member("agent-b")
        await b.maintain()
        assert revision_of(b, authority) == 2
        await hub.stop()
        hub.node.db.execute(
            "UPDATE gates_policy_bundles SET revision = 1, bundle = ?, digest = ?",
            (old, sha256(old)),
        )
        again = NodeRuntime(hub.node, clock=net.clock, transport=net.transport("hub"))
        net.runtimes.append(again)
        await again.start(("hub", 4000))
        assert revision_of(again, authority) == 1
        await b.maintain()
        await until(lambda: revision_of(again, authority) == 2, timeout=3)
        c = await net.member("agent-c")
        await c.maintain()
        assert revision_of(c, authority) == 2
        # b did not subscribe the hub when it asked back: a newer bundle is not echoed to it
        assert b.host.services["policy"].status()["subscribers"] == 0

    run_memnet(test, tmp_path)


def test_the_authority_node_takes_back_a_members_lower_digest_of_its_revision(
    tmp_path: Path,
) -> None:
    """bundles 8, two bundles of one revision: the hub holds revision 2 of the higher digest,
    member b (which took it from elsewhere, not passed on) the lower: b's next pull, naming
    its digest, brings the lower one to the hub, the one every node keeps."""

    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        low, high = sorted((bundle(net, 2), bundle(net, 2, policies=POLICIES)), key=sha256)
        hub.policies.accept(high, now=net.clock.now())
        b = await net.member("agent-b")
        b.policies.accept(low, now=net.clock.now())
        await b.maintain()

        def kept() -> bool:
            held = hub.policies.held(authority)
            return held is not None and held.bundle.data == low

        await until(kept, timeout=3)

    run_memnet(test, tmp_path)
