"""Review 65d: attacks on the node's access decision point (troth.node.access) and the service
host (troth.node.services.host) that did not work, each a test that fails if the defence it
names breaks.

1. A Cedar bundle reloaded while a member's channel stays open: the next call is decided by
   the bundle in force now (revision 2 forbids what revision 1 allowed, revision 3 allows it
   again), never by the one the channel first met (`GatedPolicy` asks the point per request).
2. A revocation arriving between two calls of a member Cedar allows: the second is refused,
   even where the standing passed in still shows the chain (the point re-checks the chain
   against the feed held now).
3. A caveated delegate whose chain expires while its channel stays open: served before, then
   answered the bytes a made-up service name gets (nothing says "expired", nor names the
   service, the method or the bundle revision).
4. A service added at run time after a stranger's channel to the hub opened: the stranger's
   request to it and to a made-up name get the same bytes (`NodeRuntime.add_service` grants
   open channels the new address; without it the request met `no-route` while the made-up
   name met `denied`, and the stranger told the new service apart).
5. A delegate whose every chain carries caveats, asking a declared service's method it does
   not have and a made-up service, with Cedar allowing it a method of that service: told
   "no method" (it may call the service), not a denial; refused the service, the made-up
   name's bytes (`ServiceHost._no_method` decides with the same decision point).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.gates import POLICIES, T, make_world
from tests.support.nodes import MemNet, run_memnet
from tests.test_review64b_access import answers as wire_answers
from tests.test_review64b_access import request, strangers_channel
from tests.test_review64b_refuted import Tools
from tests.test_review64o_access import (
    FAILS,
    HOLDS,
    SERVICES,
    answers,
    delegate,
    gated,
    refused_alike,
)
from troth.channel import VerifiedPeer
from troth.credentials import RevocationKind
from troth.errors import CredentialError
from troth.node.access import AccessRequest, PeerCaller, Standing
from troth.node.services.base import decode_response

READ = '@id("read") permit(principal, action == Action::"read", resource);\n'
DAY = 86_400


def _member(world: Any) -> VerifiedPeer:
    credential = world.credential(world.support_chain, world.support)
    return VerifiedPeer(world.support.identity, (credential,))


def test_1_a_bundle_reloaded_mid_channel_decides_the_next_call() -> None:
    world = make_world()
    store = world.store(world.bundle(policies=POLICIES + READ, services=SERVICES))
    policy = gated(world, store)
    caller = PeerCaller(_member(world), "c")

    def read(now: int) -> Any:
        return policy.decide(AccessRequest(caller, "orders", "read", None, now))

    assert read(T + 10).allowed
    store.accept(
        world.bundle(revision=2, policies=POLICIES, services=SERVICES),
        feeds=world.feeds(),
        now=T + 20,
    )
    refused = read(T + 30)
    assert not refused.allowed
    assert "(bundle revision 2)" in refused.reasons[0], refused.reasons
    store.accept(
        world.bundle(revision=3, policies=POLICIES + READ, services=SERVICES),
        feeds=world.feeds(),
        now=T + 40,
    )
    assert read(T + 50).allowed


def test_2_a_revocation_between_two_calls_refuses_the_second() -> None:
    world = make_world()
    store = world.store(world.bundle(policies=POLICIES + READ, services=SERVICES))
    policy = gated(world, store)  # its standing shows the chains as presented
    peer = _member(world)
    caller = PeerCaller(peer, "c")
    assert policy.decide(AccessRequest(caller, "orders", "read", None, T + 10)).allowed
    [credential] = peer.credentials
    world.revoke(RevocationKind.CREDENTIAL, credential.links[0].hash, now=T + 20)
    refused = policy.decide(AccessRequest(caller, "orders", "read", None, T + 30))
    assert not refused.allowed, refused.reasons
    assert "revoked" in refused.reasons[0], refused.reasons


def test_3_a_delegate_whose_chain_expires_mid_channel_is_answered_as_a_made_up_name() -> None:
    world = make_world(sub_caveats=HOLDS)
    bundle = world.bundle(policies=POLICIES + READ, services=SERVICES, ttl=30 * DAY)
    store = world.store(bundle)
    peer = delegate(world)

    def now_standing(peer: VerifiedPeer, now: int) -> Standing:
        """As `NodeTrust.standing`: each chain verified again at `now`, dropped if it fails."""
        kept, dropped = [], []
        for credential in peer.credentials:
            try:
                verified = world.verifier.verify(
                    credential.chain, presenter=peer.identifier, feeds=world.feeds(), now=now
                )
                kept.append(verified)
            except CredentialError as exc:
                dropped.append(f"a credential from {credential.authority}: {exc}")
        return Standing(tuple(kept), dropped=tuple(dropped))

    policy = gated(world, store, standing=now_standing)
    [served] = answers(policy, peer, T + 10, "orders.read")
    assert "error" not in decode_response(served)[1][4], served
    later = T + 8 * DAY  # the delegation's 7 days are over, the bundle's 30 are not
    world.refresh_feed(later - 10)
    got = answers(policy, peer, later, "orders.read", "ordres.read")
    refused_alike(got)


def test_4_a_service_added_after_a_strangers_channel_opened_answers_as_a_made_up_name(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        assert net.hub is not None
        mallory, end = await strangers_channel(net)
        net.hub.add_service(Tools())  # after the stranger's channel is open
        tools, made_up = await wire_answers(
            mallory, end, [("tools", request()), ("tooIs", request())]
        )
        assert tools == made_up
        assert decode_response(tools)[1][4]["error"] == "denied"

    run_memnet(test, tmp_path)


def test_5_a_delegate_cedar_allows_a_method_is_told_no_method_else_a_made_up_names_bytes() -> None:
    allowed = make_world(sub_caveats=HOLDS)
    store = allowed.store(allowed.bundle(policies=POLICIES + READ, services=SERVICES))
    [told] = answers(gated(allowed, store), delegate(allowed), T + 10, "orders.write")
    error = decode_response(told)[1][4]
    assert error["error"] == "failed", error
    assert "no method 'write'" in str(error), error
    refused = make_world(sub_caveats=FAILS)
    store = refused.store(refused.bundle(policies=POLICIES + READ, services=SERVICES))
    got = answers(gated(refused, store), delegate(refused), T + 10, "orders.write", "ordres.x")
    refused_alike(got)
