"""Review 19's attacks: the network-facing node (its decision point, relays, the trace service,
the authority's feed service):

1. the trace service admits a member's record whose disclosure is not the canonical JSON it
   stands for: the hub's own `verify_log` passes, but every export of the hub's log (and the
   record's proof bundle) is refused by `troth trace verify --file`;
2. a node's trace client sends its records to whoever answers at its node.json `traces` route
   (no pin, unlike its authority's route): a member that takes over the collector's relay name
   after the grace period receives the node's audit trail and the client counts it delivered;
3. the authority's feed service charges every signed page to one node-wide budget that any
   authenticated identity may spend (a `since` past the feed's end included): a handful of
   strangers leave the members' feed syncs answered "busy" until their feeds go stale;
4. the trace service's byte budget is per identity: a member's delegates each get their own,
   where every other per-member limit (MCP sessions, relay names, leases) counts delegates
   against the member;
5. a node refuses an identity revoked in any feed it holds: a co-trusted authority revokes
   another authority's members (and that authority itself) at every node trusting both;
6. a channel is refused when any chain its peer presents does not verify: a node that holds
   one authority's credential cannot enroll with a second one over the network (and a node
   holding both cannot reach either authority's node).

Each test asserts the secure behaviour and is marked xfail (strict) while main has the bug.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.support.traces import hub_log_exports_verified
from tests.test_attacks_review2 import throwaway_delegate
from tests.test_trace_node import TRACE, send_to_hub, signed_batch, step
from troth import limits
from troth.credentials import Attributes
from troth.errors import RemoteError, TraceFailure, TrothError
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.node.runtime import NodeRuntime
from troth.node.services import call, service_address
from troth.node.services.authority import FEED_REUSE
from troth.node.services.trace import TraceClient
from troth.trace import Kind, RecordContent, ToolCall, signing
from troth.trace.signing import open_envelope, sign_record
from troth.trace.submit import Receipts, Submission, SubmittedRecord

FEED = service_address("authority")


def traces_to(where: str) -> Callable[[Node], None]:
    """A node.json `traces` route (what `prepare` writes before the node starts)."""

    def prepare(node: Node) -> None:
        node.config = dataclasses.replace(node.config, traces=where)

    return prepare


def records_of(runtime: NodeRuntime, agent: Identifier) -> list[str]:
    """The ids of `agent`'s records in `runtime`'s node log (read on the storage thread)."""
    log = runtime.traces.log()
    return [
        record.id
        for record in (open_envelope(entry.envelope)[0] for entry in log.stored())
        if record.agent == agent
    ]


# -- 1. the trace service: a disclosure that is not canonical JSON ---------------------------

UNSORTED = b'{"b":1,"a":2}'  # JSON, but not RFC 8785's form of it (keys out of order)


def test_a_members_disclosure_cannot_poison_the_hubs_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member signs a record committing to `{"b":1,"a":2}` (its own bytes: the commitment
    opens) and submits it over its channel. The collector checks only that the disclosure
    opens the commitment; the log keeps the bytes and the hub's `verify_log` passes. An export
    carries the value as JSON and its verifier re-canonicalises it (`Disclosure.from_json`):
    `{"a":2,"b":1}` no longer opens the commitment, so every export of the hub's log is refused
    at that record (and a value that is no JSON at all makes the export itself fail). The
    secure behaviour: what the log admits, its exports verify."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent = await net.member("agent-a")
        now = net.clock.now()
        signer = await agent.worker.run(lambda: agent.node.identities.signer("agent-a", now=now))
        content = RecordContent(
            Kind.TOOL_INVOCATION, tool=ToolCall("refund"), values={"args": {"a": 2, "b": 1}}
        )
        with monkeypatch.context() as hostile:  # the member's own signing code
            hostile.setattr(signing, "disclosure_value", lambda value: UNSORTED)
            hostile.setattr(signing, "is_canonical_value", lambda value: True)
            verified = sign_record(signer, content, seq=0, prev=None, time=now)
        submitted = SubmittedRecord(verified.envelope, verified.disclosures)
        batch = Submission(signer.identity.history, (signer.attestation,), (), (submitted,))
        answer = await send_to_hub(agent, hub)("submit", batch.to_cbor())
        (result,) = Receipts.from_cbor(answer, expected=1).results
        assert (result.delivered, result.reason) == (False, TraceFailure.MALFORMED)
        assert "not the canonical JSON" in result.detail

        assert await hub.worker.run(hub_log_exports_verified, hub)

    run_memnet(test, tmp_path / "home")


# -- 2. the trace client: records follow the route, not the collector ------------------------

GRACE = 60  # the hub's relay grace (short, so the clock stays well within feed staleness)


def test_a_nodes_records_never_go_to_whoever_took_its_collectors_relay_name(
    tmp_path: Path,
) -> None:
    """The collector (a member without a listening port) serves `trace` at
    `/tcp/hub:4000/relay/collector`; agent's node.json sends its records there and the first
    lands in the collector's log. The collector goes away; after the relay grace, mallory (a
    member holding `troth.relay=*`) creates `collector` on the hub and runs a stock node. The
    agent's client opens a new channel to the same route and admits mallory (any member), so
    its next record is appended to mallory's log, re-signed at seq 0 when mallory's log
    answered that the chain does not follow, and counted delivered: the collector never sees
    it. Authority and policy routes are pinned to the identity for exactly this
    (docs/protocols.md, "Addresses and tickets"); the trace route is not."""

    async def test(net: MemNet) -> None:
        collector = await net.member("collector", **{"troth.relay": "collector"})
        await collector.create_relay("collector", HUB)
        agent = await net.node("agent", prepare=traces_to(f"{HUB}/relay/collector/service/trace"))
        await agent.enroll(net.ticket(), "agent")
        agent_id = net.identifier(agent)
        client = agent.traces.recorder()
        assert isinstance(client, TraceClient)
        first = client.record(step(0))
        await client.flush(10)
        assert first.result() == 0
        assert await collector.worker.run(records_of, collector, agent_id) == [first.record]

        collector_id = net.identifier(collector)
        await collector.stop()  # it leaves (its relay is held for it for the grace period)
        net.runtimes.remove(collector)
        for end in list(agent.channels.ends.values()):  # the agent notices (its keepalive)
            if end.peer is not None and end.peer.identifier == collector_id:
                await end.close()
        net.clock.advance(GRACE + 1)
        mallory = await net.member("mallory", **{"troth.relay": "*"})
        await mallory.create_relay("collector", HUB)

        second = client.record(step(1))
        with contextlib.suppress(TimeoutError, TrothError):
            await client.flush(5)
        assert await mallory.worker.run(records_of, mallory, agent_id) == []
        assert not (second.done and second.error is None)  # not counted as delivered

    run_memnet(test, tmp_path / "home", relay_grace=GRACE)


# -- 3. the feed service: a node-wide signing budget that strangers spend ---------------------

STRANGERS = 6  # 6 x the per-peer burst (8) > the node's burst (2 x 20)


def test_strangers_cannot_spend_the_budget_a_members_feed_sync_needs(tmp_path: Path) -> None:
    """A node hosting an authority admits any authenticated identity (newcomers enroll), and
    `feed [since]` is open to all. Each stranger asks for pages past the feed's end: every ask
    takes a token from its own budget (8) and the node's (40), then fails, so nothing is
    cached. Six throwaway identities spend the node's budget; the honest member's next sync
    (from where its copy ends, the page no longer cached after FEED_REUSE) is answered
    "busy", and so is every sync while the strangers keep asking (2 per second each, 20 for
    the node): after FEED_STALENESS (5 min) its feed is stale and it refuses every credential
    of that authority."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hub_id = net.identifier(hub)
        pinned = frozenset({hub_id})
        honest = await net.member("honest")
        honest_end = await honest.channel_to(route(HUB), expect=hub_id)
        strangers = [await net.node(f"stranger-{n}") for n in range(STRANGERS)]
        ends = [await s.channel_to(route(HUB), expect=hub_id, also_trust=pinned) for s in strangers]
        net.clock.advance(FEED_REUSE)  # the pages signed so far are not served again
        for stranger, end in zip(strangers, ends, strict=True):
            for _ in range(limits.FEED_PAGE_SIGNS_PER_CALLER_BURST):
                with contextlib.suppress(RemoteError):  # "the feed has N entries", then "busy"
                    await call(stranger.router, (end.enc, FEED), "feed", [1 << 40])
        authority = net.authority.identifier
        since = await honest.worker.run(honest.node.wallet.feed_since, authority)
        page = await call(honest.router, (honest_end.enc, FEED), "feed", [since])
        assert isinstance(page, bytes)

    run_memnet(test, tmp_path / "home")


# -- 4. the trace service: a byte budget per identity, not per member -------------------------


def test_a_members_delegates_share_its_trace_byte_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/protocols.md ("Trace service"): "A member's submissions also spend a byte budget
    ... so one member replaying or flooding submissions is held to its rate". Mallory floods
    until answered "busy", then mints a delegate offline (free: her credential may delegate)
    and submits as it over a channel of its own: a new 16 MiB budget each time. MCP sessions,
    relay names and leases count a member's delegates against the member
    (`member_accounts`); the trace budget must too. (Burst made small here: 8 KiB.)"""
    monkeypatch.setattr(limits, "TRACE_SUBMIT_BURST_BYTES", 8192)

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hub_id = net.identifier(hub)
        mallory = await net.member("mallory")
        batch = signed_batch(mallory, "mallory", net.clock.now()).submission.to_cbor()
        end = await mallory.channel_to(route(HUB), expect=hub_id)
        refusals: list[str] = []
        for _ in range(64):  # the same batch again and again (answered "already")
            try:
                await call(mallory.router, (end.enc, TRACE), "submit", batch)
            except RemoteError as exc:
                refusals.append(str(exc))
                break
        assert [text[:4] for text in refusals] == ["busy"]  # held to her byte budget
        throwaway_delegate(mallory, "throwaway", {"agents.team": "support"})
        own = signed_batch(mallory, "throwaway", net.clock.now()).submission.to_cbor()
        delegate_end = await mallory.channel_as("throwaway", route(HUB), expect=hub_id)
        with pytest.raises(RemoteError, match="busy"):
            await call(mallory.router, (delegate_end.enc, TRACE), "submit", own)

    run_memnet(test, tmp_path / "home")


# -- 5. revocations: a feed speaks only for its own authority --------------------------------


def local_authority(home: Path, name: str, now: int) -> tuple[Identifier, str]:
    """A node on this machine hosting authority `name`; its identifier and a ticket for a
    member of it (`node:NAME`, enrolled without a channel)."""
    init_node(name, home=home)
    with open_node(name, home=home) as node:
        authority = node.create_authority(name, now=now)
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({f"{name}.team": "desk"}),
            address=f"node:{name}",
            now=now,
        )
        return authority.identifier, str(ticket)


def test_a_co_trusted_authority_cannot_revoke_another_authoritys_member(tmp_path: Path) -> None:
    """Desk serves two organisations: its own identity is acme's member (the hub), its
    identity `g` globex's (an authority on the same machine), so desk trusts both. Agent is
    acme's member only and talks to desk. Globex (hostile, or its key stolen) revokes agent's
    identity in globex's feed, which desk syncs: desk refuses agent ("revoked by globex"). A
    chain is checked against its root authority's feed only (docs/formats.md, "Credentials",
    step 8), and a broker admin of one authority cannot end another's members' leases
    (docs/secrets.md); but the identity checks (`NodeTrust._judge`, `verify_peer`) read every
    held feed. The same entry naming acme's own identity cuts desk off from acme: its channel
    to acme is refused, acme's feed goes stale, every acme credential is refused."""

    async def test(net: MemNet) -> None:
        globex, ticket = local_authority(net.home, "globex", net.clock.now())
        desk = await net.node("desk", listen=("desk", 4000))
        await desk.enroll(net.ticket(), "desk")
        await desk.worker.run(lambda: desk.node.identities.create(now=net.clock.now(), name="g"))
        await desk.enroll(ticket, "g")
        agent = await net.member("agent")
        assert await agent.send_message("/tcp/desk:4000/service/echo", "hi") == "hi"

        with open_node("globex", home=net.home) as node:
            node.authority().revoke_identity(net.identifier(agent), now=net.clock.now())
        await desk.refresh_feeds()
        assert desk.feeds[globex].revoked_identities  # desk holds globex's word
        assert await agent.send_message("/tcp/desk:4000/service/echo", "still") == "still"

    run_memnet(test, tmp_path / "home")


# -- 6. two authorities over the network: every chain presented must verify ------------------


def test_a_node_enrolled_with_one_authority_enrolls_with_another_over_the_network(
    tmp_path: Path,
) -> None:
    """Desk's identity is acme's member. Its identity `g` enrolls with globex, reached over the
    network: the enrollment channel is opened as desk's own identity, which presents its acme
    chain, and globex's node (trusting globex only) refuses the whole channel ("issuer is not
    a trust anchor"), where the per-request standing would only drop that credential. The
    same holds the other way (enrolled with globex first, acme's node refuses desk), and for a
    node holding both chains: every peer trusting one of the two refuses its channels, so its
    feed syncs fail and, after FEED_STALENESS, it refuses every credential."""

    async def test(net: MemNet) -> None:
        _globex, authority, ticket = await globex_over_tcp(net)
        desk = await net.node("desk")
        await desk.enroll(net.ticket(), "desk")
        await desk.worker.run(lambda: desk.node.identities.create(now=net.clock.now(), name="g"))
        await desk.enroll(ticket, "g")
        assert authority.identifier in desk.trust.routes

    run_memnet(test, tmp_path / "home")
