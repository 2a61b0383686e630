"""Review 63i, refuted: attacks on the node's one access decision point (troth.node.access,
troth.node.services.host) that the defences held against. Each test fails if the defence it
names breaks.

1. A delegation whose middle link is revoked: a member delegates to an identity of its own
   (no caveats), which opens a channel to the hub and is served echo; the authority then
   removes the member (its credential, the chain's middle link, revoked; the delegation
   itself not). The delegate's next request over the same open channel is refused: standing
   is judged at every request, against the feeds held now.
2. A caveated delegation on the chains no bundle governs: a bundle of the node's own authority
   declares `orders`, but the caller's authority is one `governs` says it does not speak
   for; its delegate, with a caveat that holds, is judged by the built-in rule alone, which
   evaluates no caveat: refused (fail closed), by `decide` and by `admits` alike.
3. A caveated delegation on an infrastructure service of a node whose bundle declares it and
   permits everything: echo keeps its built-in rule, so the caveat is never evaluated and the
   delegate is refused.
4. A call racing a revocation: a member's request to a method that waits (an operator's
   service on the hub) is decided and running when the authority removes the member; its
   next request over the same channel, made while the first still runs, is refused (no
   allowance is kept per channel or per request in flight). The one decided before ends as
   decided: a decision is made when the request arrives (docs/protocols.md, "Access").
5. A delegate reaching with its delegator's attributes: support holds orders.access read and
   write and orders.customer, and delegates orders.access=read alone; the delegate asks for
   methods whose rules need write, the customer, or (the relay's rule) an attribute holding
   the argument: each refused, judged by the delegated link's attributes, not the root's.
6. A control request of an operation with an argument it does not take, or a non-text one:
   refused before the decision point is even asked (nothing runs).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.support.gates import POLICIES, T, make_world
from tests.support.nodes import HUB, MemNet, route, run_memnet
from troth.channel import VerifiedPeer
from troth.credentials import Attributes
from troth.errors import DecodeError, Denied
from troth.node.access import (
    AccessRequest,
    AttributeCoversArgument,
    GatedPolicy,
    MembersOnly,
    PeerCaller,
    RequireAttributes,
    Rule,
    RulesPolicy,
    Standing,
)
from troth.node.control import perform
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address

PERMIT_ALL = '@id("all") permit(principal, action, resource);\n'


def _delegate(member: NodeRuntime, name: str, caveats: tuple[str, ...] = ()) -> None:
    """`member` makes local identity `name` and delegates its team attribute to it, offline."""
    now = member.clock.now()
    delegate = member.node.identities.create(now=now, name=name).identifier
    chain = member.node.wallet.delegate(
        member.name,
        to=delegate,
        attributes=Attributes({"agents.team": "support"}),
        now=now,
        ttl=600,
        purpose="review 63i",
        caveats=caveats,
    )
    member.node.wallet.hold(name, chain, now=now)


def test_a_delegate_whose_delegators_credential_is_revoked_is_refused_on_its_channel(
    tmp_path: Path,
) -> None:
    """Refuted 1."""

    async def test(net: MemNet) -> None:
        alice = await net.member("alice")
        _delegate(alice, "bob")
        end = await alice.channel_as("bob", route(HUB))
        echo = (end.enc, service_address("echo"))
        assert await call(alice.router, echo, "echo", "before") == "before"
        net.authority.remove_member(net.identifier(alice), now=net.clock.now())
        hub = net.hub
        assert hub is not None
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        with pytest.raises(Denied) as refused:
            await call(alice.router, echo, "echo", "after")
        assert "link 0: revoked" in refused.value.reasons[0]  # the middle link, not bob's

    run_memnet(test, tmp_path)


def _gated(caveats: tuple[str, ...], *, governs: bool) -> tuple[GatedPolicy, VerifiedPeer]:
    world = make_world(sub_caveats=caveats)
    services = {"orders": ["read"], "echo": ["echo"]}
    bundle = world.bundle(policies=POLICIES + PERMIT_ALL, services=services)
    store = world.store(bundle)
    sub = VerifiedPeer(world.sub.identity, (world.credential(world.sub_chain, world.sub),))

    def standing(peer: VerifiedPeer, _now: int) -> Standing:
        return Standing(peer.credentials)

    rules = {("orders", "read"): MembersOnly(), ("echo", "echo"): MembersOnly()}
    policy = GatedPolicy(
        RulesPolicy("hub", rules, standing),
        world.point(store),
        lambda name: name in services,
        governs=lambda _service, _authority: governs,
    )
    return policy, sub


def test_a_caveated_delegate_on_chains_no_bundle_governs_meets_no_rule() -> None:
    """Refuted 2 (Cedar, where it governs, allows the same delegate: the caveat holds)."""
    for governs in (True, False):
        policy, sub = _gated(("context.now > 0",), governs=governs)
        request = AccessRequest(PeerCaller(sub, "c"), "orders", "read", None, T + 10)
        decision = policy.decide(request)
        assert decision.allowed is governs, decision.reasons
        assert policy.admits("orders", "read", sub.credentials[0], T + 10) is governs
        if not governs:
            assert "carry caveats" in decision.reasons[0]


def test_a_caveated_delegate_is_refused_an_infrastructure_service_a_bundle_permits() -> None:
    """Refuted 3."""
    policy, sub = _gated(("context.now > 0",), governs=True)
    decision = policy.decide(AccessRequest(PeerCaller(sub, "c"), "echo", "echo", "x", T + 10))
    assert not decision.allowed
    assert decision.policies == ()
    assert "carry caveats" in decision.reasons[0]


def test_a_request_after_a_revocation_is_refused_while_one_decided_before_runs(
    tmp_path: Path,
) -> None:
    """Refuted 4."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        release = asyncio.Event()
        slow = troth.Service("slow")

        @slow.method("wait", allow=MembersOnly())
        async def wait(request: Any) -> str:
            await release.wait()
            return "done"

        hub.add_service(slow)
        alice = await net.member("alice")
        end = await alice.channel_to(route(HUB))
        first = asyncio.ensure_future(
            call(alice.router, (end.enc, service_address("slow")), "wait", None)
        )
        await asyncio.sleep(0.05)
        assert not first.done()
        net.authority.remove_member(net.identifier(alice), now=net.clock.now())
        await hub.worker.run(hub.trust.refresh_hosted, net.clock.now())
        with pytest.raises(Denied):
            await call(alice.router, (end.enc, service_address("slow")), "wait", None)
        assert not first.done()
        release.set()
        assert await first == "done"

    run_memnet(test, tmp_path)


def test_a_delegate_meets_rules_with_its_own_attributes_not_its_delegators() -> None:
    """Refuted 5 (the delegator itself passes each)."""
    world = make_world()
    support = VerifiedPeer(
        world.support.identity, (world.credential(world.support_chain, world.support),)
    )
    sub = VerifiedPeer(world.sub.identity, (world.credential(world.sub_chain, world.sub),))
    rules: dict[tuple[str, str], Rule] = {
        ("orders", "write"): RequireAttributes({"orders.access": "write"}),
        ("orders", "customer"): RequireAttributes({"orders.customer": "4471"}),
        ("orders", "open"): AttributeCoversArgument("orders.access"),
    }
    policy = RulesPolicy("hub", rules, lambda peer, _now: Standing(peer.credentials))
    for method, argument in (("write", None), ("customer", None), ("open", "write")):
        for peer, allowed in ((support, True), (sub, False)):
            request = AccessRequest(PeerCaller(peer, "c"), "orders", method, argument, T + 10)
            assert policy.decide(request).allowed is allowed, (method, peer.identifier)


class _Counting:
    """A stand-in runtime: counts the decisions asked of it (none may be)."""

    def __init__(self) -> None:
        self.decided = 0

    def decide(self, _request: AccessRequest) -> Any:
        self.decided += 1
        raise AssertionError("decided")


@pytest.mark.parametrize(
    ("op", "raw"),
    [
        ("channel.create", {"to": "/tcp/x:1", "extra": "y"}),
        ("channel.create", {"to": ["/tcp/x:1"]}),
        ("message.send", {"to": "/tcp/x:1/service/echo"}),
    ],
)
def test_a_control_request_with_arguments_it_does_not_take_is_refused_first(
    op: str, raw: dict[str, Any]
) -> None:
    """Refuted 6."""
    runtime = _Counting()
    with pytest.raises(DecodeError):
        asyncio.run(perform(runtime, op, raw))  # type: ignore[arg-type]
    assert runtime.decided == 0
