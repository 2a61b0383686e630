"""Review 47i, refuted: what an agent past 64 changes still does elsewhere (the code was
right). Its node presents its history from a checkpoint its authority's feed attests; the
hub admits it over a fresh channel (the handshake attests the checkpoint by the hub's stored
copy or feed), its credential is verified, and a members-only method (the trace service's
`head`, behind the decision point) answers it: only the collector refused it (review 47i,
collector 1, tests/test_review47i_collector.py)."""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import HUB, MemNet, route, run_memnet
from tests.test_review47i_collector import _long_lived_agent
from tests.test_trace_node import TRACE
from troth.node.runtime import ECHO
from troth.node.services import call


def test_an_agent_past_64_changes_keeps_its_channels_and_credential(tmp_path: Path) -> None:
    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent, _queued = await _long_lived_agent(net)
        presented = agent.node.identities.get("agent-a", now=net.clock.now()).identity
        assert presented.first_index > 0
        end = await agent.channel_to(route(HUB), expect=net.identifier(hub))
        assert await call(agent.router, (end.enc, ECHO), "echo", "still me") == "still me"
        answer = await call(agent.router, (end.enc, TRACE), "head", [str(agent.identifier)])
        assert answer[3] is not None  # the agent's head in the hub's log: a member's answer
        peer = end.peer
        assert peer is not None
        assert peer.identifier == net.identifier(hub)

    run_memnet(test, tmp_path / "home", budget=120)
