"""Review 66e, second review of policy ask-back (65w) and link reconnection (65x).

askback 1 (medium: CPU and traffic without end): an authority's node and a member's node
both restored from copies hold their bundle (revision r >= 2) back (review 54p, rollback 1).
A held-back bundle's node asks with revision r - 1 (`PolicyService._asked`), and a node
answering a `get` treated its own held-back bundle as none held, so it asked every requester
naming any revision above 0 back (`_asks_above(None, ...)`). The member's pull asked the hub
for r - 1; the hub asked the member back for r - 1; the member, its own bundle held back too,
asked the hub back in turn; and so on: each answer null (a held-back bundle is handed to no
one), each ask-back ended before the other side's arrived (`_asking` dedups in-flight asks
only), so the two nodes asked each other back for good, at the speed of the channel. Now a
requester is asked back only when the bundle it names would answer this node's own `get`
(`_asked`): a held-back node asking r - 1 is not asked back by another asking r - 1.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from tests.support.nodes import MemNet, run_memnet
from tests.test_gates_distribution import bundle
from tests.test_review54p_rollback import _restart_held_back
from troth.node.services.policy import PolicyService


def _counting(service: PolicyService, counts: dict[str, int], name: str) -> None:
    """Count the `get`s `service` answers (its method table's handler wrapped)."""
    method = service.methods["get"]
    handler = method.handler

    async def counted(arguments: Any, context: Any) -> Any:
        counts[name] += 1
        return await handler(arguments, context)

    service.methods = {**service.methods, "get": dataclasses.replace(method, handler=counted)}


async def _settle(*services: PolicyService) -> None:
    """Let the services' tasks end (at most 40 rounds of them: an ask-back loop never does)."""
    for _ in range(40):
        tasks = [t for s in services for t in s._tasks if not t.done()]
        if not tasks:
            return
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)


def test_two_held_back_nodes_do_not_ask_each_other_back_for_good(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        authority = net.authority.identifier
        hub = net.hub
        assert hub is not None
        hub.policies.accept(bundle(net, 3), now=net.clock.now())
        b = await net.member("agent-b")
        await b.maintain()
        await b.stop()
        await hub.stop()
        hub_again = _restart_held_back(net, hub, "hub")
        await hub_again.start(("hub", 4000))
        b_again = _restart_held_back(net, b, "host-agent-b")
        await b_again.start()
        at_hub, at_b = hub_again.host.services["policy"], b_again.host.services["policy"]
        assert isinstance(at_hub, PolicyService)
        assert isinstance(at_b, PolicyService)
        counts = {"hub": 0, "b": 0}
        _counting(at_hub, counts, "hub")
        _counting(at_b, counts, "b")
        await b_again.maintain()  # its pull asks the hub for revision 2
        await _settle(at_hub, at_b)
        assert counts["hub"] <= 2, counts
        assert counts["b"] <= 1, counts
        assert hub_again.policies.held_back(authority)  # no one knows better: still in doubt
        assert b_again.policies.held_back(authority)

    run_memnet(test, tmp_path)
