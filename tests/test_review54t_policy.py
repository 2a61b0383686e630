"""Review 54t, policy 1: a member's node whose bundle came back with a restored copy of its
node.db holds it back (review 54p, rollback 1) until its authority's node answers it again (or
a newer one comes, or it is installed again); another member pushing the same bytes, a copy as
stale as the restored one (or kept on purpose: more permissive than the newer revision), let
it decide again, the authority's node unreachable or not asked yet."""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, route, run_memnet
from tests.test_gates_distribution import bundle, revision_of
from tests.test_review54p_rollback import _restart_held_back
from troth.node.services import call
from troth.node.services.policy import POLICY

B = ("host-agent-b", 4100)


def test_a_fellow_members_push_of_the_same_bytes_does_not_confirm_a_held_back_bundle(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        data = bundle(net, 1)
        hub.policies.accept(data, now=net.clock.now())
        b = await net.member("agent-b")
        c = await net.member("agent-c")
        await b.maintain()
        await c.maintain()
        assert revision_of(c, authority) == 1
        await b.stop()
        await hub.stop()  # the authority's node out of reach: b's pulls find nothing
        again = _restart_held_back(net, b, B[0])
        await again.start(B)
        assert again.policies.held_back(authority)
        end = await c.channel_to(route(f"/tcp/{B[0]}:{B[1]}"))
        answer = await call(c.router, (end.enc, POLICY), "push", [data])
        assert answer["accepted"] is False
        assert again.policies.held_back(authority)  # a member's copy is no confirmation

    run_memnet(test, tmp_path)
