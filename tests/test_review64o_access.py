"""Review 64o, access: review 64m's access 1 fixed, and its other shapes.

access 1 (low; fixed, `GatedPolicy._members_refusal`): a delegate whose every credential
  carries a caveat is refused `channels.unserved` (members only: caveats satisfy no built-in
  rule), so a made-up service name answers it the built-in rule's refusal; a service a Cedar
  bundle declares answered it Cedar's ("hub refused T..: orders.read: <why> (bundle revision
  1)"), so it listed the declared services the node serves, and the revision in force
  (review 64m, access 1, whose test `tests/test_review64m_access.py` now passes). Now Cedar's
  refusal of a caller `UNSERVED` refuses is answered `UNSERVED`'s refusal, whatever Cedar
  said: these tests are the other shapes of it, each of which failed before the fix —
  a. the delegate's caveat holds, but no policy permits the method (Cedar's "no permit");
  b. a method the declared service does not have (`ServiceHost._no_method` answers the first
     method's denial: it was Cedar's);
  c. the bundle reloaded at another revision, and the bundle expired: the served service's
     answer to the delegate stays the made-up name's, bytes for bytes (no revision, no
     "expired" told);
  d. the declared service decided by Cedar with `governs` (the runtime's), the delegate's
     chain of the authority whose bundle governs it.
The refusal text of a caller whose credentials all carry caveats now says what holds in every
path ("which only a Cedar policy bundle can satisfy"): it said "which are not evaluated yet",
false where a bundle's Cedar had evaluated them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.support.channels import UnverifiedSource
from tests.support.gates import POLICIES, GatesWorld, T, make_world
from tests.test_review64b_access import request
from troth.channel import VerifiedPeer
from troth.gates import BundleStore
from troth.identity import Identifier
from troth.node.access import (
    UNSERVED,
    AccessRequest,
    Decision,
    GatedPolicy,
    MembersOnly,
    PeerCaller,
    RulesPolicy,
    Standing,
)
from troth.node.services.base import (
    Method,
    RequestContext,
    ServiceHost,
    decode_response,
)
from troth.routing import Address, RoutedMessage, Router, new_worker_address


class Orders:
    """An operator's service a bundle declares, members only."""

    name = "orders"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods = {"read": Method(self.read, MembersOnly(), inline=True)}

    async def read(self, arguments: Any, context: RequestContext) -> Any:
        return arguments

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


SERVICES = {"orders": ["read"]}
HOLDS = ("context.now > 0",)
FAILS = ("context.now < 0",)


def held(peer: VerifiedPeer, _now: int) -> Standing:
    return Standing(peer.credentials)


def gated(
    world: GatesWorld,
    store: BundleStore,
    *,
    governs: Callable[[str, Identifier], bool] | None = None,
    standing: Callable[[VerifiedPeer, int], Standing] = held,
) -> GatedPolicy:
    """The node's decision point: `orders.read` and `channels.unserved` members only, Cedar
    beside them where `store`'s bundles declare a service."""
    rules = {("orders", "read"): MembersOnly(), UNSERVED: MembersOnly()}
    return GatedPolicy(
        RulesPolicy("hub", rules, standing),
        world.point(store),
        store.declares,
        governs=governs,
    )


def delegate(world: GatesWorld) -> VerifiedPeer:
    return VerifiedPeer(world.sub.identity, (world.credential(world.sub_chain, world.sub),))


def answers(policy: GatedPolicy, peer: VerifiedPeer, now: int, *names: str) -> list[bytes]:
    """What `peer`'s request `read` to each service `names` is answered (`orders` served)."""

    async def main() -> list[bytes]:
        router = Router()
        host = ServiceHost(
            router, policy, clock=lambda: now, callers=lambda _s: PeerCaller(peer, "c")
        )
        host.add(Orders())
        got: list[bytes] = []
        reply = new_worker_address("answers")

        async def take(message: RoutedMessage, _source: object) -> None:
            got.append(bytes(message.payload))

        router.register(reply, take)
        for name, method in (n.split(".") for n in names):
            message = RoutedMessage((Address("service", name),), (reply,), request(method))
            if name == "orders":
                await router.route(message, UnverifiedSource())
            else:
                assert await host.unserved(message, UnverifiedSource())
            await asyncio.sleep(0)
        return got

    return asyncio.run(main())


def refused_alike(got: list[bytes]) -> None:
    assert all(decode_response(g)[1][4]["error"] == "denied" for g in got), got
    assert len(set(got)) == 1, got
    text = got[0].decode("utf-8", "replace")
    assert "revision" not in text, text
    assert "orders" not in text, text


def test_a_delegate_whose_caveat_holds_but_no_policy_permits_is_told_no_more() -> None:
    """access 1a: Cedar refuses the delegate (no permit for `read`) although its caveat
    holds: the served `orders` answered Cedar's reason, a made-up name the rule's."""
    world = make_world(sub_caveats=HOLDS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    got = answers(gated(world, store), delegate(world), T + 10, "orders.read", "ordres.read")
    refused_alike(got)


def test_a_method_the_declared_service_lacks_answers_as_a_made_up_name() -> None:
    """access 1b: `orders.write` (no such method) is answered the first method's denial,
    which was Cedar's; `ordres.write` the rule's."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    got = answers(gated(world, store), delegate(world), T + 10, "orders.write", "ordres.write")
    refused_alike(got)


def test_a_bundle_reloaded_or_expired_tells_the_delegate_nothing() -> None:
    """access 1c: the bundle at revision 1, then 2, then expired: the delegate's request to
    `orders` is answered the made-up name's bytes each time."""
    world = make_world(sub_caveats=FAILS)
    first = world.bundle(policies=POLICIES, services=SERVICES, ttl=3_600)
    store = world.store(first)
    peer = delegate(world)
    before = answers(gated(world, store), peer, T + 10, "orders.read", "ordres.read")
    store.accept(
        world.bundle(policies=POLICIES, services=SERVICES, revision=2, ttl=3_600),
        feeds=world.feeds(),
        now=T + 20,
    )
    after = answers(gated(world, store), peer, T + 30, "orders.read", "ordres.read")
    expired = answers(gated(world, store), peer, T + 7_200, "orders.read", "ordres.read")
    refused_alike([*before, *after, *expired])


def test_a_bundle_governing_the_delegates_authority_tells_it_nothing() -> None:
    """access 1d: with `governs` (the bundle speaks for its own authority's chains), as the
    runtime decides."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    authority = world.authority.identifier

    def governs(_service: str, of: Identifier) -> bool:
        return of == authority

    policy = gated(world, store, governs=governs)
    refused_alike(answers(policy, delegate(world), T + 10, "orders.read", "ordres.read"))


def test_the_decision_itself_is_the_unserved_refusal() -> None:
    """access 1, at the decision point: the reasons `decide` gives the delegate for the
    declared `orders.read` are those of `channels.unserved`, and Cedar's policies are not
    named either."""
    world = make_world(sub_caveats=FAILS)
    store = world.store(world.bundle(policies=POLICIES, services=SERVICES))
    policy, caller = gated(world, store), PeerCaller(delegate(world), "c")
    served = policy.decide(AccessRequest(caller, "orders", "read", None, T + 10))
    unserved = policy.decide(AccessRequest(caller, *UNSERVED, None, T + 10))
    assert isinstance(served, Decision)
    assert not served.allowed
    assert served == unserved
    assert "only a Cedar policy bundle can satisfy (fail closed)" in served.reasons[0]
