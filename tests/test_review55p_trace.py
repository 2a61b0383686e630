"""Review 55p, trace 1 (found by review 55i): while a node's copy of an authority's feed is due a
sync (a link revocation made on this machine, its process killed after the authority's commit:
docs/credentials.md, "Revocation is real"), every access decision of the node drops that
authority's chains (`NodeTrust.standing`; review 48w, duepeer 1), the MCP gates' credential
sources too (review 55i, mcp 1 and 2). The trace collector verified the chain a record names
against the held feed, which may predate the revocation: a member whose other chain passes the
service's `MembersOnly` had its records appended to the node's log under the chain the node's
own standing drops, shown as their authority."""

from __future__ import annotations

from pathlib import Path

from tests.support.nodes import MemNet, globex_over_tcp, run_memnet
from tests.test_trace_node import send_to_hub
from tests.test_trace_service import tool
from troth.credentials import Attributes
from troth.errors import TraceFailure
from troth.identity import Identifier
from troth.node.runtime import NodeRuntime
from troth.trace.batcher import SentBatch, TraceBatcher
from troth.trace.signing import open_envelope
from troth.trace.submit import Receipts, SubmitResult


async def agent_of_two(net: MemNet) -> tuple[NodeRuntime, NodeRuntime, Identifier, bytes]:
    """The hub (its trace service's node), member of globex too, and `agent`, a member of both:
    the hub, the agent, globex and the agent's globex chain."""
    hub = net.hub
    assert hub is not None
    _globex, authority, ticket = await globex_over_tcp(net)
    await hub.enroll(ticket, "hub")
    agent = await net.member("agent")
    globex = authority.identifier
    again = authority.create_ticket(
        creator=globex,
        attributes=Attributes({"globex.team": "desk"}),
        address="/tcp/globex:4000",
        now=net.clock.now(),
    )
    await agent.enroll(str(again), "agent")
    [held] = [c for c in agent.node.wallet.held("agent") if c.authority == globex.digest]
    return hub, agent, globex, held.chain


def first_batcher(agent: NodeRuntime) -> TraceBatcher:
    """A batcher signing as the agent's identity, its first record next."""
    identities = agent.node.identities
    batcher = TraceBatcher(lambda at: identities.signer("agent", now=at))
    batcher.set_head(None)
    return batcher


def under_chain(batcher: TraceBatcher, n: int, chain: bytes, now: int) -> SentBatch:
    """A batch of one record, its `n`th, naming `chain` as its authority."""
    batcher.add(tool("refund", chain, n), chain=chain, now=now)
    batch = batcher.next_batch(now)
    assert batch is not None
    return batch


async def submitted(
    agent: NodeRuntime, hub: NodeRuntime, batcher: TraceBatcher, batch: SentBatch, now: int
) -> SubmitResult:
    """The hub's answer to `batch` of one record, sent over the agent's channel to it (given
    to `batcher`)."""
    answer = await send_to_hub(agent, hub)("submit", batch.submission.to_cbor())
    receipts = Receipts.from_cbor(answer, expected=1)
    batcher.answered(receipts, now=now)
    return receipts.results[0]


def test_a_record_under_a_chain_of_an_authority_due_a_sync_waits_for_it(tmp_path: Path) -> None:
    """The agent's record under its globex chain is appended; once the hub's copy of globex's
    feed is marked due a sync (its node out of reach at the mark's route), the hub's standing
    for the agent holds its hub chain only (its members-only check passes), and its next
    record under the globex chain is refused for now, saying why (the client sends it again
    once the feed is synced: appended, or refused for good as revoked)."""

    async def scene(net: MemNet) -> None:
        hub, agent, globex, chain = await agent_of_two(net)
        now = net.clock.now()
        batcher = first_batcher(agent)
        first = under_chain(batcher, 0, chain, now)
        result = await submitted(agent, hub, batcher, first, now)
        assert result.delivered, result
        record = open_envelope(first.submission.records[0].envelope)[0]
        assert record.authority is not None  # the globex chain is shown as its authority
        hub.node.wallet.store.mark_sync_due(globex.digest, "/tcp/away:4000", now)
        hub.trust.read_due()
        [end] = [
            end
            for end in hub.channels.ends.values()
            if end.peer is not None and end.peer.identifier == agent.identifier
        ]
        assert end.peer is not None
        standing = hub.trust.standing(end.peer, now)
        assert [c.authority for c in standing.credentials] == [net.authority.identifier]
        result = await submitted(agent, hub, batcher, under_chain(batcher, 1, chain, now), now)
        assert not result.delivered
        assert result.reason is TraceFailure.NOT_YET, result
        assert "due a sync" in result.detail

    run_memnet(scene, tmp_path, budget=90)
