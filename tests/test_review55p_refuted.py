"""Review 55p: attempts on the trace collector's judgement of a member over an open channel
that the node refused (each would pass if its defence broke)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.nodes import MemNet, run_memnet
from tests.test_review55p_trace import agent_of_two, first_batcher, submitted, under_chain
from troth.credentials import CredentialChain
from troth.errors import Denied, TraceFailure


def test_a_chain_revoked_since_the_handshake_is_refused_once_the_feed_is_synced(
    tmp_path: Path,
) -> None:
    """A record under the agent's globex chain is appended; globex revokes the chain and the
    hub syncs globex's feed. A record under it over the channel still open is refused for good
    as revoked: the collector verifies the chain a record names now, against the feeds held
    now, whatever the channel showed."""

    async def scene(net: MemNet) -> None:
        hub, agent, globex, chain = await agent_of_two(net)
        now = net.clock.now()
        batcher = first_batcher(agent)
        result = await submitted(agent, hub, batcher, under_chain(batcher, 0, chain, now), now)
        assert result.delivered, result
        authority = next(n for n in net.opened if n.name == "globex").authority()
        credential = CredentialChain.decode(chain).credentials[-1]
        authority.revoke_credential(credential.hash, now=now)
        assert await hub.sync_trusted_feed(globex) == 1
        assert hub.trust.due == frozenset()
        result = await submitted(agent, hub, batcher, under_chain(batcher, 1, chain, now), now)
        assert result.reason is TraceFailure.CREDENTIAL_INVALID, result
        assert "revoked" in result.detail

    run_memnet(scene, tmp_path, budget=90)


def test_a_member_whose_only_chain_waits_for_a_sync_submits_nothing(tmp_path: Path) -> None:
    """The agent's channel to the hub showed its hub chain only (it enrolled with globex
    after); the hub's copy of its own authority's feed is marked due a sync. Over that open
    channel the agent holds no chain the hub's standing keeps: the members-only decision
    refuses the submission, saying why, before the collector sees it (the globex chain the
    record names passes nothing there)."""

    async def scene(net: MemNet) -> None:
        hub, agent, _globex, chain = await agent_of_two(net)
        now = net.clock.now()
        batcher = first_batcher(agent)
        hub.node.wallet.store.mark_sync_due(net.authority.identifier.digest, "/tcp/away:1", now)
        hub.trust.read_due()
        with pytest.raises(Denied, match="due a sync"):
            await submitted(agent, hub, batcher, under_chain(batcher, 0, chain, now), now)

    run_memnet(scene, tmp_path, budget=90)
