"""Review 64m, access: what review 64b's answer to a service not served still tells.

access 1 (low; fixed by review 64o, access 1: `GatedPolicy` answers a caller `UNSERVED`
  refuses, on a declared service Cedar refuses it, `UNSERVED`'s refusal): on a node
  whose decision point puts Cedar beside the rules (`GatedPolicy`), a delegate whose every
  credential carries a caveat (docs/protocols.md, "A service a node does not serve", names it
  among the callers that must not tell served services from made-up names) asks a service an
  active bundle declares, which the node serves (`orders`, members only), and a made-up name:
  the served one answers Cedar's denial ("hub refused T..: orders.read: <Cedar's reason>
  (bundle revision 1)"), the made-up one the built-in rule's ("... its only credentials carry
  caveats ..."), as `unserved` decides `channels.unserved`, an infrastructure pseudo method
  Cedar never decides. The delegate lists the declared services this node serves (and the
  bundle revision in force). A stranger with no credential is answered alike (no chain for
  Cedar to decide), and so is a caveated delegate on a node with no bundle (review 64m,
  refuted 3). A fix would answer such a caller as the decision point answers a served
  method of a declared service (Cedar asked with the chains it governs, the requested name
  and method), or give every refusal of a caller whose chains are all caveated one fixed
  text; both change what `GatedPolicy` is asked, beyond this review.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.gates import POLICIES, T, make_world
from tests.test_review64b_access import request
from tests.test_review64b_refuted import Anywhere
from troth.channel import VerifiedPeer
from troth.node.access import (
    UNSERVED,
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
    service_address,
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


def test_a_caveated_delegate_cannot_tell_a_declared_service_from_a_made_up_one() -> None:
    """access 1: the delegate's caveat does not hold (Cedar refuses it); its request to the
    served `orders` and to a made-up `ordres` must be answered the same bytes."""
    world = make_world(sub_caveats=("context.now < 0",))
    services = {"orders": ["read"]}
    bundle = world.bundle(policies=POLICIES, services=services)
    store = world.store(bundle)
    sub = VerifiedPeer(world.sub.identity, (world.credential(world.sub_chain, world.sub),))

    def standing(peer: VerifiedPeer, _now: int) -> Standing:
        return Standing(peer.credentials)

    rules = {("orders", "read"): MembersOnly(), UNSERVED: MembersOnly()}
    policy = GatedPolicy(
        RulesPolicy("hub", rules, standing), world.point(store), lambda name: name in services
    )

    async def main() -> list[bytes]:
        router = Router()
        host = ServiceHost(
            router, policy, clock=lambda: T + 10, callers=lambda _s: PeerCaller(sub, "c")
        )
        host.add(Orders())
        got: list[bytes] = []
        reply = new_worker_address("answers")

        async def take(message: RoutedMessage, _source: object) -> None:
            got.append(bytes(message.payload))

        router.register(reply, take)
        served = RoutedMessage((service_address("orders"),), (reply,), request("read"))
        await router.route(served, Anywhere())
        made_up = RoutedMessage((Address("service", "ordres"),), (reply,), request("read"))
        assert await host.unserved(made_up, Anywhere())
        await asyncio.sleep(0)
        return got

    served, made_up = asyncio.run(main())
    assert decode_response(served)[1][4]["error"] == "denied"
    assert served == made_up
