"""Review 54q (delegation and attenuation): attacks by which a delegate would end with more
than its delegator that the code already refuses. Each link here is built by hand (signed,
never through `delegate`, which refuses them first): the verifier must refuse it again."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import pytest

from tests.conftest import NOW
from tests.support.parties import Party, hand_link, make_party, verified_feed
from troth import limits
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    VerifiedCredential,
    delegate,
    issue_credential,
)
from troth.errors import CredentialError, CredentialFailure
from troth.gates.caveats import evaluate_caveats
from troth.gates.entities import credential_entities
from troth.identity import Identifier
from troth.vault import SoftwareVault

F = CredentialFailure
SKEW = limits.DEFAULT_CREDENTIAL_SKEW_SECONDS
BOTH = Attributes({"orders.access": frozenset({"read", "write"})})
READ = Attributes({"orders.access": "read"})
TTL = 3600


@dataclass
class World:
    authority: Party
    alice: Party
    bob: Party
    carol: Party
    root: CredentialChain  # authority -> alice, BOTH, depth 3

    def verifier(self) -> ChainVerifier:
        return ChainVerifier(TrustPolicy(frozenset({self.authority.identifier})))

    def verify(
        self,
        chain: CredentialChain,
        presenter: Party,
        *,
        now: int = NOW,
        revoking: list[tuple[int, bytes]] | None = None,
        verifier: ChainVerifier | None = None,
    ) -> VerifiedCredential:
        feed = verified_feed(self.authority, revoking, now=now)
        return (verifier or self.verifier()).verify(
            chain.encode(),
            presenter=presenter.identifier,
            feeds={self.authority.identifier: feed},
            now=now,
        )


@pytest.fixture(scope="module")
def world() -> World:
    vault = SoftwareVault()
    authority, alice, bob, carol = (make_party(vault, now=NOW) for _ in range(4))
    root = issue_credential(
        authority.signer, subject=alice.identifier, attributes=BOTH, now=NOW, ttl=TTL, depth=3
    )
    return World(
        authority, alice, bob, carol, CredentialChain((root,), (authority.identity.history,))
    )


def _link(
    signer: Party,
    chain: CredentialChain,
    subject: Identifier,
    *,
    attributes: Attributes = READ,
    expires_at: int = NOW + TTL,
    depth: int | None = None,
    parent: bytes | None = None,
    caveats: tuple[str, ...] = (),
) -> CredentialChain:
    """`chain` extended by a link `signer` signs by hand, with no check at all."""
    return hand_link(
        signer,
        chain,
        subject,
        attributes,
        now=NOW,
        expires_at=expires_at,
        depth=depth,
        parent=parent,
        caveats=caveats,
    )


def _refused(world: World, chain: CredentialChain, presenter: Party) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        world.verify(chain, presenter)
    return caught.value


# -- a link wider than its parent ---------------------------------------------------------------


def test_a_link_expiring_after_its_parent_is_refused(world: World) -> None:
    chain = _link(world.alice, world.root, world.bob.identifier, expires_at=NOW + TTL + 1)
    error = _refused(world, chain, world.bob)
    assert (error.reason, error.link) == (F.AMPLIFIED, 1)


def test_a_link_with_a_value_its_parent_lacks_is_refused(world: World) -> None:
    middle = _link(world.alice, world.root, world.bob.identifier, attributes=READ)
    chain = _link(world.bob, middle, world.carol.identifier, attributes=BOTH)
    error = _refused(world, chain, world.carol)
    assert (error.reason, error.link) == (F.AMPLIFIED, 2)


def test_a_link_with_a_key_its_parent_lacks_is_refused(world: World) -> None:
    wider = Attributes({"orders.access": "read", "troth.role": "policy-admin"})
    chain = _link(world.alice, world.root, world.bob.identifier, attributes=wider)
    error = _refused(world, chain, world.bob)
    assert (error.reason, error.link) == (F.AMPLIFIED, 1)


@pytest.mark.parametrize("depth", [3, 4])
def test_a_link_keeping_or_raising_its_parents_depth_is_refused(world: World, depth: int) -> None:
    chain = _link(world.alice, world.root, world.bob.identifier, depth=depth)
    error = _refused(world, chain, world.bob)
    assert (error.reason, error.link) == (F.DEPTH_EXCEEDED, 1)


# -- reordered, repeated, cyclic, spliced -------------------------------------------------------


def test_reordered_links_are_refused(world: World) -> None:
    middle = _link(world.alice, world.root, world.bob.identifier)
    chain = _link(world.bob, middle, world.carol.identifier)
    a, b, c = chain.credentials
    swapped = CredentialChain((a, c, b), chain.histories)
    error = _refused(world, swapped, world.bob)
    assert (error.reason, error.link) == (F.MISALIGNED, 1)


def test_a_repeated_link_is_refused(world: World) -> None:
    chain = _link(world.alice, world.root, world.bob.identifier)
    a, b = chain.credentials
    error = _refused(world, CredentialChain((a, b, b), chain.histories), world.bob)
    assert error.reason in {F.MISALIGNED, F.CYCLE, F.BROKEN_LINK}
    assert error.link == 2


def test_a_delegation_back_to_the_delegator_is_a_cycle(world: World) -> None:
    middle = _link(world.alice, world.root, world.bob.identifier)
    chain = _link(world.bob, middle, world.alice.identifier)
    error = _refused(world, chain, world.alice)
    assert (error.reason, error.link) == (F.CYCLE, 2)


def test_a_delegation_to_oneself_is_a_cycle(world: World) -> None:
    chain = _link(world.alice, world.root, world.alice.identifier)
    error = _refused(world, chain, world.alice)
    assert (error.reason, error.link) == (F.CYCLE, 1)


def test_a_delegation_to_the_authority_is_a_cycle(world: World) -> None:
    chain = _link(world.alice, world.root, world.authority.identifier)
    error = _refused(world, chain, world.authority)
    assert (error.reason, error.link) == (F.CYCLE, 1)


def test_a_link_from_another_authoritys_credential_is_not_spliced_in(world: World) -> None:
    """alice holds READ from the authority and BOTH from another one; her delegation of BOTH
    under the other's credential, put below the authority's, names another parent."""
    other = make_party(SoftwareVault(), now=NOW)
    theirs = issue_credential(
        other.signer, subject=world.alice.identifier, attributes=BOTH, now=NOW, ttl=TTL, depth=3
    )
    narrow = issue_credential(
        world.authority.signer,
        subject=world.alice.identifier,
        attributes=READ,
        now=NOW,
        ttl=TTL,
        depth=3,
    )
    their_chain = CredentialChain((theirs,), (other.identity.history,))
    wide = _link(world.alice, their_chain, world.bob.identifier, attributes=BOTH)
    spliced = CredentialChain((narrow, wide.credentials[1]), (world.authority.identity.history,))
    spliced = CredentialChain(
        spliced.credentials, (*spliced.histories, world.alice.identity.history)
    )
    error = _refused(world, spliced, world.bob)
    assert (error.reason, error.link) == (F.BROKEN_LINK, 1)


def test_one_link_past_the_global_limit_is_refused() -> None:
    """MAX_DELEGATION_LINKS delegation links verify; one more is refused however deep the
    root allows (it cannot allow more: its depth is at most the limit)."""
    vault = SoftwareVault()
    authority = make_party(vault, now=NOW)
    parties = [make_party(vault, now=NOW) for _ in range(limits.MAX_DELEGATION_LINKS + 2)]
    root = issue_credential(
        authority.signer,
        subject=parties[0].identifier,
        attributes=READ,
        now=NOW,
        ttl=TTL,
        depth=limits.MAX_DELEGATION_LINKS,
    )
    chain = CredentialChain((root,), (authority.identity.history,))
    for holder, subject in itertools.pairwise(parties[:-1]):
        chain = _link(holder, chain, subject.identifier)
    world = World(authority, parties[0], parties[1], parties[2], chain)
    assert len(world.verify(chain, parties[-2]).links) == limits.MAX_DELEGATION_LINKS + 1
    past = _link(parties[-2], chain, parties[-1].identifier, depth=0)
    with pytest.raises(CredentialError) as caught:
        world.verify(past, parties[-1])
    assert caught.value.reason in {F.OVER_LIMIT, F.DEPTH_EXCEEDED}


# -- revocation ends the chains below, cached or not --------------------------------------------


@pytest.mark.parametrize("what", ["link", "delegate", "delegator", "root credential"])
def test_a_revocation_ends_a_chain_the_verifier_cached(world: World, what: str) -> None:
    middle = _link(world.alice, world.root, world.bob.identifier)
    chain = _link(world.bob, middle, world.carol.identifier, depth=0)
    verifier = world.verifier()
    world.verify(chain, world.carol, verifier=verifier)  # cached now
    entry = {
        "link": (1, chain.credentials[1].hash),
        "delegate": (2, world.bob.identifier.digest),
        "delegator": (2, world.alice.identifier.digest),
        "root credential": (1, chain.credentials[0].hash),
    }[what]
    with pytest.raises(CredentialError) as caught:
        world.verify(chain, world.carol, revoking=[entry], verifier=verifier, now=NOW + 1)
    assert caught.value.reason is F.REVOKED


def test_a_revoked_link_leaves_its_sibling_alive(world: World) -> None:
    to_bob = _link(world.alice, world.root, world.bob.identifier)
    to_carol = _link(world.alice, world.root, world.carol.identifier)
    revoking = [(1, to_bob.credentials[1].hash)]
    assert world.verify(to_carol, world.carol, revoking=revoking).actor == world.carol.identifier


# -- the clock skew does not stack across links -------------------------------------------------


def test_the_clock_skew_is_allowed_once_however_many_links(world: World) -> None:
    middle = _link(world.alice, world.root, world.bob.identifier)
    chain = _link(world.bob, middle, world.carol.identifier, depth=0)
    end = NOW + TTL
    assert world.verify(chain, world.carol, now=end + SKEW - 1).expires_at == end
    with pytest.raises(CredentialError) as caught:
        world.verify(chain, world.carol, now=end + SKEW)
    assert caught.value.reason is F.EXPIRED


# -- caveats: a later one never lifts an earlier one ---------------------------------------------


def _caveated(world: World, *later: str) -> VerifiedCredential:
    """alice -> bob with caveat `context.ttl <= 60`, bob -> carol with caveats `later`."""
    middle = delegate(
        world.alice.signer,
        world.root,
        subject=world.bob.identifier,
        attributes=READ,
        now=NOW,
        ttl=TTL,
        purpose="p",
        caveats=("context.ttl <= 60",),
    )
    chain = _link(world.bob, middle, world.carol.identifier, depth=0, caveats=later)
    return world.verify(chain, world.carol)


@pytest.mark.parametrize("later", ["true", "context has ttl || true", "context.ttl <= 600"])
def test_a_later_caveat_does_not_lift_an_earlier_one(world: World, later: str) -> None:
    credential = _caveated(world, later)
    failure = evaluate_caveats(credential, json.dumps({"ttl": 600}))
    assert failure is not None
    assert failure.ids == ("caveat:1:0",)
    assert evaluate_caveats(credential, json.dumps({"ttl": 30})) is None


def test_a_later_caveat_injecting_a_permit_is_no_caveat_and_denies(world: World) -> None:
    injected = (
        "true }; permit(principal, action, resource); forbid(principal, action, resource) "
        "unless { true"
    )
    credential = _caveated(world, injected)
    for ttl in (30, 600):
        failure = evaluate_caveats(credential, json.dumps({"ttl": ttl}))
        assert failure is not None
        assert (failure.ids, failure.evaluated) == (("caveat:2:0",), False)


@pytest.mark.parametrize("lookalike", ["context.ttl \u2264 60", "context.ttl <\u200b= 60"])
def test_a_lookalike_operator_is_no_caveat_and_denies(world: World, lookalike: str) -> None:
    credential = _caveated(world, lookalike)
    failure = evaluate_caveats(credential, json.dumps({"ttl": 30}))
    assert failure is not None
    assert failure.ids == ("caveat:2:0",)
    assert not failure.evaluated


@pytest.mark.parametrize("context", [{}, {"ttl": "30"}, {"ttl": True}, {"ttl": 30.0}])
def test_a_caveat_missing_or_mistyped_context_denies(world: World, context: object) -> None:
    """A context without the key, or with a value of another type, is an evaluation error
    (never coerced): the caveat does not hold."""
    credential = _caveated(world)
    failure = evaluate_caveats(credential, json.dumps(context))
    assert failure is not None
    assert failure.ids == ("caveat:1:0",)


# -- what the gates see is the narrowed authority ------------------------------------------------


def test_the_principal_is_the_last_link_with_its_narrowed_attributes(world: World) -> None:
    middle = _link(world.alice, world.root, world.bob.identifier, expires_at=NOW + 100)
    chain = _link(world.bob, middle, world.carol.identifier, depth=0, expires_at=NOW + 50)
    credential = world.verify(chain, world.carol)
    assert credential.attributes == READ
    assert credential.expires_at == NOW + 50
    *_, principal = json.loads(credential_entities(credential))
    assert principal["uid"]["id"] == str(world.carol.identifier)
    assert principal["tags"] == {"orders.access": ["read"]}
    assert principal["attrs"]["expires_at"] == NOW + 50
    assert principal["attrs"]["depth"] == 2


# -- what a policy reads of upstream agents (docs/policy.md, "What a delegate holds") ------------


def _decide(policy: str, credential: VerifiedCredential) -> bool:
    """Cedar's answer for `credential`'s actor invoking `Tool::"t"` under `policy` alone."""
    import cedarpy

    from troth.gates.cedar_call import authorize
    from troth.gates.entities import agent_uid

    request = {
        "principal": agent_uid(credential.actor),
        "action": 'Action::"invoke"',
        "resource": 'Tool::"t"',
        "context": "{}",
    }
    policies = cedarpy.PolicySet.from_str(policy)
    entities = cedarpy.Entities.from_json_str(credential_entities(credential), None)
    return authorize(request, policies, entities, None).allowed


SUSPENDED = Attributes({"orders.access": "read", "orders.status": "suspended"})
PERMIT = '@id("p") permit(principal, action, resource);\n'


def test_a_forbid_on_the_root_s_tag_binds_every_delegate(world: World) -> None:
    """A delegation may leave any attribute out: a forbid on the principal's own tag is
    escaped by delegating without it (documented), one on the root's (the authority's word
    about the member, link 0) binds every delegate."""
    root = issue_credential(
        world.authority.signer,
        subject=world.alice.identifier,
        attributes=SUSPENDED,
        now=NOW,
        ttl=TTL,
        depth=1,
    )
    chain = CredentialChain((root,), (world.authority.identity.history,))
    delegated = world.verify(_link(world.alice, chain, world.bob.identifier), world.bob)
    own = 'forbid(principal, action, resource) when { principal.hasTag("orders.status") };'
    roots = 'forbid(principal, action, resource) when { principal.root.hasTag("orders.status") };'
    assert _decide(PERMIT + own, delegated)  # the dropped attribute: the forbid missed
    assert not _decide(PERMIT + roots, delegated)
    assert not _decide(PERMIT + roots, world.verify(chain, world.alice))


def test_a_delegators_tags_are_not_the_principals(world: World) -> None:
    """`principal.delegator`'s tags are what the delegator holds (wider): a permit on them
    alone admits a delegate its delegation withheld them from (documented); the principal's
    own tags are its narrowed authority."""
    chain = _link(world.alice, world.root, world.bob.identifier, attributes=READ)
    delegated = world.verify(chain, world.bob)
    write = 'getTag("orders.access").contains("write")'
    upstream = (
        f"permit(principal, action, resource) when {{ principal has delegator && "
        f'principal.delegator.hasTag("orders.access") && principal.delegator.{write} }};'
    )
    own = (
        f"permit(principal, action, resource) when {{ "
        f'principal.hasTag("orders.access") && principal.{write} }};'
    )
    assert _decide(upstream, delegated)
    assert not _decide(own, delegated)


# -- a pre-rotation key, after the rotation and after a restart -----------------------------------


def test_a_link_by_the_delegators_pre_rotation_key_dies_with_its_rotation() -> None:
    """alice rotates and announces it (the authority's feed supersedes her old history); a
    link her old signing key signs afterwards, carrying her old history, is refused by a
    verifier that never saw the rotation (one started afresh: no memory of it), and one
    carrying the new history refuses the old key's attestation."""
    from tests.support.feeds import pages
    from troth.credentials import RevocationEntry, RevocationKind, Supersession, verify_page
    from troth.identity import rotate_identity

    vault = SoftwareVault()
    authority, alice, bob = (make_party(vault, now=NOW) for _ in range(3))
    root = issue_credential(
        authority.signer, subject=alice.identifier, attributes=READ, now=NOW, ttl=TTL, depth=2
    )
    chain = CredentialChain((root,), (authority.identity.history,))
    _, rotated, _ = rotate_identity(
        vault, alice.identity, alice.primary, alice.next_primary, now=NOW + 1, valid_for=10**8
    )
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        alice.identifier.digest,
        authority.identifier,
        NOW + 2,
        "",
        Supersession(2, rotated.current_change_hash),
    )
    (page,) = pages(authority, [entry], now=NOW + 2, per_page=1)
    feed = verify_page(page, authority=authority.identifier, now=NOW + 2)
    late = NOW + 10
    forged = delegate(
        alice.signer, chain, subject=bob.identifier, attributes=READ, now=late, ttl=60, purpose="p"
    )
    restarted = ChainVerifier(TrustPolicy(frozenset({authority.identifier})))
    with pytest.raises(CredentialError) as caught:
        restarted.verify(
            forged.encode(), presenter=bob.identifier, feeds={authority.identifier: feed}, now=late
        )
    assert (caught.value.reason, caught.value.link) == (F.SUPERSEDED, 1)
    with_new_history = CredentialChain(forged.credentials, (*chain.histories, rotated.history))
    with pytest.raises(CredentialError) as caught:
        restarted.verify(
            with_new_history.encode(),
            presenter=bob.identifier,
            feeds={authority.identifier: feed},
            now=late,
        )
    assert (caught.value.reason, caught.value.link) == (F.ATTESTATION_INVALID, 1)


def test_a_context_escape_is_not_read_as_a_value(world: World) -> None:
    """Cedar's JSON escapes in a context (`__expr`, `__extn`, `__entity`) never make a caveat
    hold: `context.ttl <= 60` is false or an error for each (a denial)."""
    credential = _caveated(world)
    for escaped in (
        {"__expr": "1"},
        {"__extn": {"fn": "decimal", "arg": "1.0"}},
        {"__entity": {"type": "Agent", "id": str(world.bob.identifier)}},
    ):
        assert evaluate_caveats(credential, json.dumps({"ttl": escaped})) is not None


def test_a_caveat_on_a_tags_absence_is_met_by_a_delegate_that_drops_it(world: World) -> None:
    """A caveat is evaluated for the acting principal (documented, docs/policy.md): alice's
    caveat `!principal.hasTag("orders.status")` on bob, who holds the tag, is met by bob's
    delegate carol whose link leaves it out; one on `principal.root` binds carol too."""
    root = issue_credential(
        world.authority.signer,
        subject=world.alice.identifier,
        attributes=SUSPENDED,
        now=NOW,
        ttl=TTL,
        depth=2,
    )
    chain = CredentialChain((root,), (world.authority.identity.history,))
    for caveat, carol_passes in (
        ('!principal.hasTag("orders.status")', True),
        ('!principal.root.hasTag("orders.status")', False),
    ):
        to_bob = _link(
            world.alice, chain, world.bob.identifier, attributes=SUSPENDED, caveats=(caveat,)
        )
        to_carol = _link(world.bob, to_bob, world.carol.identifier, attributes=READ)
        bob = world.verify(to_bob, world.bob)
        carol = world.verify(to_carol, world.carol)
        assert evaluate_caveats(bob, "{}") is not None
        assert (evaluate_caveats(carol, "{}") is None) is carol_passes


# -- the gate: the delegate's narrowed authority, and revocation of a cached chain -------------


def test_the_gate_decides_the_delegates_narrowed_authority_and_its_revocation() -> None:
    """The support agent (orders.access read+write) delegates read to the sub-agent: the gate
    lets the sub-agent look up but not refund (the root's write is not its own); once the
    sub-agent's link, or the support agent's identity, is revoked, the credential the gate
    decided before (its entities and policies cached per chain) is denied."""
    from tests.support.gates import T
    from tests.support.gates import make_world as gates_world
    from troth.gates import Outcome, ToolCall

    lookup = ToolCall("lookup_order", {"order_id": "4471"})
    refund = ToolCall("refund", {"order_id": "4471", "amount": 5})
    for what, kind in (("link", 1), ("identity", 2)):
        gates = gates_world()
        point = gates.point(gates.store(gates.bundle()))
        sub = gates.credential(gates.sub_chain, gates.sub)
        assert point.decide(sub, lookup, now=T + 10).allowed
        assert point.decide(sub, refund, now=T + 10).outcome is Outcome.NO_PERMIT
        support = gates.credential(gates.support_chain, gates.support)
        assert point.decide(support, refund, now=T + 10).allowed
        revoked = (
            CredentialChain.decode(gates.sub_chain).credentials[1].hash
            if what == "link"
            else gates.support.identifier.digest
        )
        gates.revoke(kind, revoked, now=T + 11)
        denied = point.decide(sub, lookup, now=T + 12)
        assert denied.outcome is Outcome.CREDENTIAL, denied
