"""Review 27b, relays 2: a restart of the relay node lets one member hold more names than
MAX_RELAYS_PER_OWNER (docs/protocols.md, "Relays": "One member (the names of identities it
delegated to included) holds at most MAX_RELAYS_PER_OWNER names").

A name counts against a member through the accounts its creator's chain showed
(`Relay.accounts`, `member_accounts`). `relays.json` keeps only each name's owner, so a name
kept across a restart is held for that owner with no accounts: until its owner creates it
again it counts against no member but by its owner's own identifier. Mallory's delegates hold
her whole quota; the hub restarts; a fresh delegate creates a full quota of new names (the kept
ones, owned by other identities, count nothing), and then each old delegate creates its kept
name again — as its owner, with no quota check at all. Every restart adds a quota: her
authority's share of the node's names, the other members' too, is hers to take.

Here MAX_RELAYS_PER_OWNER is 2 (the default 16 needs 16 delegates). Was a strict xfail until
creating a kept name again (its accounts unknown) was checked against the member's quota like
a new name, the name itself not counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_attacks_review2 import throwaway_delegate
from tests.test_reconnect import crash_and_restart_hub
from troth import limits
from troth.errors import RemoteError
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address

RELAY = service_address("relay")


async def create_as(member: NodeRuntime, delegate: str, name: str) -> str:
    """`delegate` (a local identity of `member`'s node) creates relay `name` at the hub over
    a channel of its own: the route, or the refusal's text."""
    end = await member.channel_as(delegate, route(HUB))
    try:
        return str(await call(member.router, (end.enc, RELAY), "create", name))
    except RemoteError as exc:
        return f"refused: {exc}"


def test_a_restart_of_the_relay_node_adds_no_names_to_a_members_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mallory's delegates d0 and d1 hold her two names; a third is refused. The hub
    restarts; d2 and d3 create new names, then d0 and d1 create theirs again: the hub forwards
    at most two names of hers."""
    monkeypatch.setattr(limits, "MAX_RELAYS_PER_OWNER", 2)

    async def test(net: MemNet) -> None:
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        for n in range(4):
            throwaway_delegate(mallory, f"d{n}", {"troth.relay": "*"})
        assert await create_as(mallory, "d0", "d0") == "/relay/d0"
        assert await create_as(mallory, "d1", "d1") == "/relay/d1"
        refused = await create_as(mallory, "d2", "d2")
        assert "the most one member may hold" in refused  # her quota is full

        async def nothing() -> None:
            pass

        await crash_and_restart_hub(net, down=nothing)
        answers = {name: await create_as(mallory, name, name) for name in ("d2", "d3", "d0", "d1")}
        hub = net.hub
        assert hub is not None
        relays = hub.status()["services"]["relay"]
        up = sorted(name for name, relay in relays.items() if relay["state"] == "up")
        assert len(up) <= limits.MAX_RELAYS_PER_OWNER, (up, answers)
        refusals = [a for a in answers.values() if a.startswith("refused")]
        assert refusals
        assert all("the most one member may hold" in a for a in refusals)

    run_memnet(test, tmp_path / "home", budget=40)
