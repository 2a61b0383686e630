"""Review 44a, gated channels: a caveated delegate and an MCP server published on a node that
hosts no authority (docs/protocols.md, "Access" and "MCP service").

gated channels 1 (fixed; was a strict xfail): `mcp.<name>` is `GatedMembers` — members and
anchors, caveated credentials included, the gate deciding every tools/call with the caveats —
but a channel is admitted by `channels.open`, whose rule `NodeRuntime._set_rules` made
`AnyAuthenticated` when a service has such a method, else `MembersOnly`, and `MembersOnly`
never takes a caveated credential (caveats fail closed). On the hub (its `authority` service is
`AnyAuthenticated`) a caveated delegate reached the server; on a member's node that publishes
one (`troth mcp serve`, no authority, no broker) it could not even open a channel: refused
PEER_NOT_ALLOWED ("its only credentials carry caveats"). Nothing was let in that should not be
(deny, not allow), but the one service meant for caveated delegates was out of their reach
there. Fixed in `NodeRuntime._set_rules`: the channel rule is `GatedMembers()` when no method
is `AnyAuthenticated` but one is `GatedMembers` (channels are infrastructure: no bundle governs
them), so a caveated chain opens a channel and each request is still decided by its method's
rule — every other service's built-in rule keeps refusing it (the test asks echo).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mcp_orders import orders_server
from tests.support.nodes import MemNet, route, run_memnet
from tests.test_review44a_callers import delegate_from
from troth.encoding import cbor
from troth.errors import Denied
from troth.node.services import call, service_address
from troth.node.services.mcp import publish_upstream


def test_a_caveated_delegate_reaches_an_mcp_server_on_a_node_hosting_none(
    tmp_path: Path,
) -> None:
    async def test(net: MemNet) -> None:
        desk = await net.node("desk", listen=("desk", 4000))
        await desk.enroll(net.ticket(), "desk")
        await publish_upstream(desk, "orders", orders_server())
        alice = await net.member("alice", **{"troth.relay": "alice"})
        await alice.worker.run(delegate_from, alice, "alice", "caveated", ("context.now > 0",))
        desk_id = net.identifier(desk)
        end = await alice.channel_as("caveated", route("/tcp/desk:4000"), expect=desk_id)
        frame = cbor.encode(["troth.mcp.frame", 1, b"\x01" * 16, None])
        where = (end.enc, service_address("mcp.orders"))
        await call(alice.router, where, "send", [frame, "calls-0000000000000000"])
        with pytest.raises(Denied, match="caveats"):  # every other service still refuses it
            await call(alice.router, (end.enc, service_address("echo")), "echo", "hi")

    run_memnet(test, tmp_path)
