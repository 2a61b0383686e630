"""A member node put back to a copy of its node.db taken before its identity's announced
rotation (review 50g, local 1; review 57r, restore 2; review 57v, release 1), with the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.backups import copy_db, node_db, restore_db
from tests.support.cli import run
from tests.support.nodes import HUB, MemNet, route
from troth.authority.client import rotated_request
from troth.node import open_node
from troth.node.runtime import NodeRuntime


def enrolled_agent(scratch: Path) -> None:
    """Authority `acme` and node `agent` enrolled with it as `agent` (its ticket in `scratch`)."""
    run("authority", "create", "acme")
    run("node", "create", "agent")
    ticket = scratch / "ticket"
    ticket.write_text(
        run("authority", "ticket", "create", "--authority", "acme", "--attr", "t.n=x").stdout
    )
    run("enroll", str(ticket), "--as", "agent", "--node", "agent")


def restored_before_announced_rotation(home: Path, scratch: Path) -> None:
    """Authority `acme`, node `agent` enrolled as `agent`, node.db copied, `agent` rotated
    (compromised: acme's feed announces it), the copy put back; acme's feed not pulled since."""
    enrolled_agent(scratch)
    copy = scratch / "agent.db"
    copy_db(node_db(home, "agent"), copy)
    run("identity", "rotate", "agent", "--compromised", "--node", "agent")  # announced
    restore_db(node_db(home, "agent"), copy)


async def thief_rotated_first(net: MemNet) -> NodeRuntime:
    """Member `agent` (a channel to the hub open), its node copied to `thief`, which rotates
    `agent` and announces it to the hub's authority first; `agent` then rotates as compromised
    (not announced yet)."""
    agent = await net.member("agent")
    await agent.channel_to(route(HUB))
    source = net.home / "nodes" / "agent"
    shutil.copytree(
        source, net.home / "nodes" / "thief", ignore=shutil.ignore_patterns("node.db*", "*.sock")
    )
    copy_db(node_db(net.home, "agent"), node_db(net.home, "thief"))
    with open_node("thief", home=net.home) as thief:
        thief.identities.rotate("agent", now=net.clock.now())
        request = rotated_request(
            thief.identities, "agent", net.authority.identifier, now=net.clock.now()
        )
    hub = net.hub
    assert hub is not None
    hub.node.authority().rotated(request, now=net.clock.now())
    hub.trust.refresh_hosted(net.clock.now())
    agent.node.identities.rotate("agent", now=net.clock.now(), compromised=True)
    return agent
