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

from tests.support.gates import POLICIES, T, make_world
from tests.test_review64o_access import answers
from troth.channel import VerifiedPeer
from troth.node.access import (
    UNSERVED,
    GatedPolicy,
    MembersOnly,
    RulesPolicy,
    Standing,
)
from troth.node.services.base import decode_response


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

    served, made_up = answers(policy, sub, T + 10, "orders.read", "ordres.read")
    assert decode_response(served)[1][4]["error"] == "denied"
    assert served == made_up
