"""Chapter 6 (the last): signed traces. A compact story with the real pieces, on loopback: node
acme runs the authority, a trace service and a secrets broker; the support agent runs its own
node, which sends every record its agent signs to acme's trace service (node.json `traces`).
The customer delegates refunds of one order to the support agent (recorded by the customer);
the agent calls a tool through a tool gate with acme's policy bundle: one call is allowed and
takes a lease from the broker, one is denied by the customer's caveat (each decision recorded
by the gate, each lease step by the broker); the agent escalates to alice, who resolves it with
her reasons. Then acme's log is shown as a tree and verified against the checkpoint acme signs,
and one byte of a stored record is flipped: verification names that record."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from troth.authority import Authority
from troth.authority.client import enroll_request
from troth.clock import Clock
from troth.credentials import Attributes, ChainVerifier, TrustPolicy, VerifiedCredential
from troth.demo.story import Story, quiet
from troth.errors import TraceError
from troth.gates import (
    BundleStore,
    DecisionPoint,
    DecisionRecord,
    Tool,
    ToolGate,
    create_bundle,
    schema_from_function,
)
from troth.identity import Identifier
from troth.node import Node, init_node, open_node
from troth.node.home import write_private_file
from troth.node.node import node_dir
from troth.node.runtime import NodeRuntime
from troth.node.services.trace import TraceClient
from troth.node.traces import delegate_recorded
from troth.secrets import AllowListPolicy, Broker
from troth.trace import Kind, Links, RecordContent, TraceLog, open_node_log, verify_log
from troth.trace.adapters import TraceDecisionRecorder
from troth.trace.merkle import leaf_hash
from troth.trace.view import TraceNode, trace_tree
from troth.vault import SoftwareVault

POLICIES = """\
@id("refund") permit(principal, action == Action::"invoke:refund", resource)
  when { principal.hasTag("orders.access") && principal.getTag("orders.access").contains("write") };
@id("refund-cap") forbid(principal, action == Action::"invoke:refund", resource)
  unless { 0 < context.args.amount && context.args.amount <= 100 };
"""
CAVEAT = 'context.args.order_id == "4471"'
CONVERSATION = "complaint-123"
TOKEN = {"scopes": ["refunds:write"], "ttl": 60, "max_ttl": 300, "audience": "payments"}


def refund(order_id: str, amount: int, *, lease: object = None) -> str:
    """Refund part of an order (in euros)."""
    return f"refunded {amount} EUR on order {order_id}"


def run(story: Story, home: Path, clock: Clock) -> None:
    story.chapter(6, "Signed traces: who did what, under whose authority, which policy")
    with quiet():
        asyncio.run(_run(story, home, clock))


@dataclasses.dataclass
class _Cast:
    """Who is who (identifier -> name) in the lines the demo prints."""

    names: dict[Identifier, str] = dataclasses.field(default_factory=dict)

    def __call__(self, identifier: Identifier | str | None) -> str:
        if identifier is None:
            return "-"
        key = Identifier.parse(identifier) if isinstance(identifier, str) else identifier
        return self.names.get(key, str(key)[:17] + "...")

    def named(self, name: str) -> Identifier:
        return next(key for key, value in self.names.items() if value == name)


async def _run(story: Story, home: Path, clock: Clock) -> None:
    cast = _Cast()
    nodes: list[Node] = []
    runtimes: list[NodeRuntime] = []
    broker: Broker | None = None
    try:
        init_node("acme", home=home)  # the node acts as its own identity: the authority's
        hub_node = open_node("acme", home=home)
        nodes.append(hub_node)
        acme = hub_node.create_authority("acme", now=clock.now())
        hub = NodeRuntime(hub_node, clock=clock)
        runtimes.append(hub)
        await hub.start(("127.0.0.1", 0))
        address = "/tcp/{}:{}".format(*(hub.listening or ("", 0)))
        story.say(f"acme: an authority, a trace service and a secrets broker, on {address[5:]}")

        config = init_node("support-agent", home=home)
        traced = dataclasses.replace(config, traces=f"{address}/service/trace")
        write_private_file(node_dir(home, "support-agent") / "node.json", traced.to_json())
        agent_node = open_node("support-agent", home=home)
        nodes.append(agent_node)
        agent = NodeRuntime(agent_node, clock=clock)
        runtimes.append(agent)
        await agent.start()
        ticket = acme.create_ticket(
            creator=acme.identifier,
            attributes=Attributes({"agents.team": "support"}),
            address=address,
            now=clock.now(),
        )
        await agent.enroll(str(ticket), "support-agent")
        story.say(f"support-agent's node sends what its agent signs to {traced.traces}")
        story.say("  (node.json `traces`; one request per batch; acme checks each record's")
        story.say("   signature, its signer's identity and the credential it names, then appends)")

        await hub.worker.run(_people, hub_node, acme, cast, clock)
        me = agent.identifier or acme.identifier
        cast.names.update({acme.identifier: "acme", me: "support-agent"})

        chain = await hub.worker.run(
            lambda: delegate_recorded(
                hub_node,
                "customer",
                to=me,
                attributes=Attributes({"orders.access": "write"}),
                ttl=1800,
                purpose="refund order 4471 (complaint 123)",
                caveats=[CAVEAT],
                clock=clock,
            )
        )
        await agent.worker.run(
            lambda: agent_node.wallet.hold("support-agent", chain, now=clock.now())
        )
        delegation = await hub.worker.run(_last_record, hub.traces.log())
        story.say(f"customer delegates refunds to support-agent, only if: {CAVEAT}")
        story.say("  (a `delegation` record, signed by the customer under acme's credential)")

        customer = cast.named("customer")  # the delegation is the customer's record
        recorder = agent.traces.decision_recorder(
            links=lambda: Links(parent=delegation, parent_agent=customer, conversation=CONVERSATION)
        )
        client = recorder.sink
        if not isinstance(client, TraceClient):
            raise RuntimeError(
                "support-agent's records go to acme's trace service: node.json says so"
            )
        verifier = ChainVerifier(TrustPolicy(frozenset({acme.identifier})))
        feeds = {acme.identifier: acme.held_feed(now=clock.now())}
        bundles = BundleStore(verifier)
        bundle = create_bundle(
            hub_node.identities.signer("acme", now=clock.now()),
            authority=acme.identifier,
            policies=POLICIES,
            schema="",
            tools={"refund": schema_from_function(refund)},
            revision=1,
            now=clock.now(),
            ttl=3600,
        )
        bundles.accept(bundle, feeds=feeds, now=clock.now())
        point = DecisionPoint(bundles, feeds.get, recorder=recorder)
        broker = _broker(hub, me, recorder, clock)
        leases = None if broker is None else _BrokerLeases(broker, clock)
        gate = ToolGate(point, [Tool.from_function(refund)], clock=clock, leases=leases)
        caller = verifier.verify(chain, presenter=me, feeds=feeds, now=clock.now())
        story.say("support-agent calls a tool through its gate (acme's policy bundle, revision 1):")
        allowed = gate.invoke(caller, "refund", {"order_id": "4471", "amount": 20})
        story.say(f"  refund(order 4471, 20 EUR): {allowed.decision.reason}")
        if broker is not None:
            story.say("    acme's broker leased it a payments token for this call, revoked after")
            story.say("    (each step a record of the broker's: any secret only as an HMAC)")
        denied = gate.invoke(caller, "refund", {"order_id": "9999", "amount": 20})
        story.say(f"  refund(order 9999, 20 EUR): {denied.decision.reason}")
        story.say("    (caveat:1:0 is the first caveat of link 1: the customer's, order 4471 only)")

        question = "the customer also asks a refund of order 9999, outside my delegation"
        asked = client.record(
            RecordContent(
                Kind.ESCALATION,
                values={"inputs": question, "reasoning": "my delegation covers order 4471 only"},
                links=Links(parent=recorder.last, conversation=CONVERSATION),
                escalation_to=cast.named("alice"),
            )
        )
        await client.flush(30)
        story.say(f'support-agent escalates to alice: "{question}"')
        reasoning = "order 9999 is on another account: the customer files a complaint for it"
        await hub.worker.run(
            lambda: hub.traces.local("alice").resolve(
                asked.record,
                of=cast.named("support-agent"),
                outcome="refused",
                considered="the order's account and the delegation's caveat",
                reasoning=reasoning,
                conversation=CONVERSATION,
            )
        )
        story.say(f'alice resolves it: refused, "{reasoning}"')
        story.say(
            "  (a `resolution` record, signed by alice, linked to the escalation by its id and "
            "its record hash: an answer to that question, no other)"
        )
    finally:
        for runtime in reversed(runtimes):
            await runtime.stop()
        if broker is not None:
            broker.close()
    try:
        with open_node_log(nodes[0], clock=clock) as log:
            _show_and_verify(story, log, cast)
    finally:
        for node in nodes:
            node.close()


def _people(hub: Node, acme: Authority, cast: _Cast, clock: Clock) -> None:
    """The customer (a member of acme's, holding refunds of its orders) and alice (the human the
    agent may ask), both on acme's node."""
    now = clock.now()
    for name in ("customer", "alice"):
        cast.names[hub.identities.create(now=now, name=name).identifier] = name
    ticket = acme.create_ticket(
        creator=acme.identifier,
        attributes=Attributes({"orders.access": frozenset({"read", "write"})}),
        address="node:acme",
        now=now,
    )
    chain = acme.enroll(enroll_request(hub.identities, "customer", ticket, now=now), now=now)
    hub.wallet.hold("customer", chain.encode(), now=now)


def _last_record(log: TraceLog) -> str:
    return next(iter(log.stored(log.size() - 1))).record_id


def _broker(
    hub: NodeRuntime, agent: Identifier, decisions: TraceDecisionRecorder, clock: Clock
) -> Broker | None:
    """acme's broker, recording into acme's log as acme (None: its vault cannot seal here, and
    the lease line is skipped)."""
    vault = hub.node.vault
    if not isinstance(vault, SoftwareVault):
        return None

    def links() -> Links:  # under the agent's last decision: its record, not acme's
        last = decisions.last
        of = None if last is None else agent
        return Links(parent=last, parent_agent=of, conversation=CONVERSATION)

    audit = hub.traces.audit_sink(links=links)
    # a lease is taken for a call the gate allowed, the customer's caveat evaluated for it
    policy = AllowListPolicy({agent: {"payments": None}}, unevaluated_caveats=True)
    broker = Broker(hub.node.db, vault, now=clock.now(), policy=policy, audit=audit)
    broker.put_secret("payments", "token", TOKEN, b"", now=clock.now())
    return broker


class _BrokerLeases:
    """The gate's lease provider: a payments token leased for an allowed call, revoked after."""

    def __init__(self, broker: Broker, clock: Clock) -> None:
        self.broker = broker
        self.clock = clock

    def lease(self, record: DecisionRecord) -> AbstractContextManager[object | None]:
        return self._leased(record.credential)

    @contextmanager
    def _leased(self, credential: VerifiedCredential | None) -> Iterator[object | None]:
        if credential is None:
            yield None
            return
        issued = self.broker.issue(credential, "payments", now=self.clock.now(), ttl=60)
        try:
            yield issued.credential
        finally:
            self.broker.revoke(credential, issued.lease_id, now=self.clock.now())


# -- the trace, verified, then tampered with ---------------------------------------------------


def _show_and_verify(story: Story, log: TraceLog, cast: _Cast) -> None:
    roots = trace_tree(log)
    signers = {entry.record.agent for entry in _walk(roots)}
    story.say(f"the trace in acme's log: {log.size()} records signed by {len(signers)} parties")
    story.say("  (#n: its place in the log; indented: what it followed from)")
    for line in _lines(roots, log, cast):
        story.say("  " + line)
    checkpoint = log.checkpoint()
    report = verify_log(log, anchor=checkpoint.note)
    story.say(
        f"verified: {report.size} signatures, each signer's records in an unbroken chain, the "
        f"chains of {report.chains_checked} records under a delegation"
    )
    story.say(
        f"  and the Merkle root of the {checkpoint.size} records is the one acme signed in its "
        f"checkpoint: {report.status.value}"
    )
    story.say("  (against the checkpoint a verifier kept; with none, the answer is 'unanchored')")
    story.proved("every step is a record signed by its actor: agent, broker, customer, human")
    story.proved("the log shows who did what, under whose delegation, by which policy")
    target = next(n for n in _walk(roots) if n.record.kind is Kind.DENIAL and _is_tool(n))
    _flip_a_byte(log, target.index)
    story.say(
        f"one byte of record #{target.index} (support-agent's denied refund) is flipped in "
        "trace.db, its leaf hash rewritten to match:"
    )
    try:
        verify_log(log, anchor=checkpoint.note)
        story.say("  verification accepted it (this must never happen)")
    except TraceError as exc:
        story.say(f"  verification fails at record #{exc.index} ({exc.record}): {exc.reason.value}")
        story.proved("one flipped byte in the stored log is found, and the record named")


def _walk(nodes: list[TraceNode]) -> Iterator[TraceNode]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _is_tool(node: TraceNode) -> bool:
    tool = node.record.tool
    return tool is not None and not tool.name.startswith("secret:")


def _lines(nodes: list[TraceNode], log: TraceLog, cast: _Cast, depth: int = 0) -> list[str]:
    lines: list[str] = []
    for node in nodes:
        lines.append("  " * depth + f"#{node.index} {_describe(node, log, cast)}")
        lines.extend(_lines(node.children, log, cast, depth + 1))
    return lines


def _describe(node: TraceNode, log: TraceLog, cast: _Cast) -> str:
    record = node.record
    who = cast(record.agent)
    shown = {name: json.loads(d.value) for name, d in log.disclosures(record.id).items()}
    args: Any = shown.get("args", {})
    under = "" if node.authority is None else " under " + " > ".join(map(cast, node.authority))
    decision = record.decision
    if record.kind is Kind.DELEGATION:
        return f"{who} delegated to {cast(args['to'])}: {args['purpose']}{under}"
    if record.kind is Kind.ESCALATION:
        return f"{who} asked {cast(record.escalation_to)}: {shown.get('inputs')}"
    if record.kind is Kind.RESOLUTION and decision is not None:
        # `TraceRecorder.resolve` names the escalation's record hash (version 3: review 53i)
        hashed = "" if record.links.parent_hash is None else " (of that question's hash)"
        return f"{who} decided: {decision.outcome}, {shown.get('reasoning')}{hashed}"
    if _is_tool(node) and decision is not None and record.tool is not None:
        call = ", ".join(f"{value}" for value in args.values())
        policies = ", ".join(decision.policies) or "no policy"
        return (
            f"{who} {record.tool.name}({call}): {decision.outcome} by {policies}, "
            f"rev {decision.bundle},{under}"
        )
    if record.tool is not None and decision is not None:  # the broker's audit
        secret = record.tool.name.removeprefix("secret:")
        lessee = f" to {cast(args['identity'])}" if args.get("identity") else ""
        return f"{who}'s broker: {decision.outcome} {secret}{lessee}"
    return f"{who}: {record.kind.value}"


def _flip_a_byte(log: TraceLog, index: int) -> None:
    """What an attacker with the file does: one byte of the record's signature changed, and
    the stored leaf hash rewritten so that the index alone does not give it away."""
    with sqlite3.connect(log.store.path, isolation_level=None) as raw:
        envelope = bytearray(
            raw.execute("SELECT envelope FROM leaves WHERE idx = ?", (index,)).fetchone()[0]
        )
        at = envelope.index(b'"sig":"') + 20
        envelope[at] = ord("A") if envelope[at] != ord("A") else ord("B")
        raw.execute(
            "UPDATE leaves SET envelope = ?, leaf = ? WHERE idx = ?",
            (bytes(envelope), leaf_hash(bytes(envelope)), index),
        )
    raw.close()
