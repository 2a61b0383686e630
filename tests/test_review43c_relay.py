"""Review 43c, relay: names a co-trusted authority's member holds on a hub from before the hub
relayed for its own authority's members only (review 38a, relay 1, commit 374de29).

Refuted attempt, pinned: the hub kept `/relay/tools` for a globex member in relays.json (it
created the name while the relay node hosted no authority, or before the change); the hub
starts again hosting acme. The kept name is held for its owner for the grace period only
(as any kept name), its owner cannot take it again (the access rule, pinned to acme, is
decided before `create` runs), and once the grace ran out acme's own member creates it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, globex_over_tcp, run_memnet
from tests.test_attacks_review21_node import GRACE, _hub_again
from tests.test_review38a_relay import globex_relayer
from troth.errors import Denied
from troth.node.services.relay import RelayBook


def test_a_kept_name_of_a_co_trusted_member_is_not_claimed_again_and_is_freed(
    tmp_path: Path,
) -> None:
    """Mallory (globex, `troth.relay=*`) is the owner of `tools` in the hub's relays.json when
    the hub (hosting acme, trusting globex) starts. Within the grace period acme's tools node
    is refused the name (reserved for mallory), and mallory is refused it too (no credential
    from acme); after the grace the hub's maintenance frees it and acme's tools node creates
    it."""

    async def test(net: MemNet) -> None:
        assert net.hub is not None
        _globex_node, globex, ticket = await globex_over_tcp(net)
        await net.hub.enroll(ticket, "hub")
        mallory = await globex_relayer(net, globex, "mallory")
        tools = await net.member("tools", **{"troth.relay": "tools"})
        book = RelayBook(net.hub.node.path / "relays.json")
        await net.hub.worker.run(book.save, {"tools": net.identifier(mallory)})
        hub = await _hub_again(net)
        assert hub.relays["tools"].owner == net.identifier(mallory)

        with pytest.raises(Denied, match="belongs to another identity"):
            await tools.create_relay("tools", HUB)
        with pytest.raises(Denied) as refused:
            await mallory.create_relay("tools", HUB)
        assert f"no credential from {net.authority.identifier}" in str(refused.value)
        assert hub.relays["tools"].owner == net.identifier(mallory)  # still only held

        net.clock.advance(GRACE)
        await hub.maintain()
        assert "tools" not in hub.relays
        assert await hub.worker.run(book.load) == {}
        created = await tools.create_relay("tools", HUB)
        assert created["route"] == f"{HUB}/relay/tools"
        assert hub.relays["tools"].owner == net.identifier(tools)

    run_memnet(test, tmp_path / "home", relay_grace=GRACE)
