"""The trace wired in: the tool gate records every call, allowed or denied; the broker records
its leases with no secret value in any record (canary); delegations and revocations are
recorded by the delegator and the revoker, through the Python API and the CLI; a human
resolves an escalation with the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import troth
from tests.support.cli import run, run_json
from tests.support.gates import GatesWorld, T, make_world
from tests.support.leases import CANARY, open_broker
from tests.support.leases import make_world as lease_world
from tests.support.parties import Party, make_party
from tests.support.traces import tool_call
from troth.clock import FixedClock, SystemClock
from troth.crypto import sha256
from troth.errors import SecretError, SecretFailure, StorageError
from troth.gates import DecisionPoint, Tool, ToolGate
from troth.identity import Identifier
from troth.node import open_node, troth_home
from troth.secrets import AllowListPolicy
from troth.trace import (
    Kind,
    Receipt,
    TraceLog,
    TraceRecord,
    TraceRecorder,
    open_node_log,
    verify_log,
)
from troth.trace.adapters import TraceAuditSink, TraceDecisionRecorder
from troth.trace.signing import RecordContent, open_envelope

NOW = T + 10


def records(log: TraceLog) -> list[TraceRecord]:
    return [open_envelope(entry.envelope)[0] for entry in log.stored()]


def disclosed(log: TraceLog, record: TraceRecord, name: str) -> Any:
    return json.loads(log.disclosures(record.id)[name].value)


def refund(order_id: str, amount: int) -> str:
    """Refund part of an order."""
    return f"refunded {amount} on {order_id}"


def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return f"order {order_id}"


def gate_for(world: GatesWorld, recorder: Any) -> ToolGate:
    store = world.store(world.bundle())
    tools = [Tool.from_function(refund), Tool.from_function(lookup_order)]
    point = DecisionPoint(store, world.held_feed, recorder=recorder)
    return ToolGate(point, tools, clock=FixedClock(NOW))


@pytest.fixture
def trace_log(tmp_path: Path) -> TraceLog:
    owner = make_party(make_world().vault, now=T)
    return TraceLog.open(
        tmp_path / "trace.db", clock=FixedClock(NOW), signer=lambda n: owner.signer
    )


def recorder_of(log: TraceLog, party: Party) -> TraceRecorder:
    return TraceRecorder(log, party.signer, clock=FixedClock(NOW))


# -- the tool gate ------------------------------------------------------------------------------


def test_the_tool_gate_records_every_call_allowed_or_denied(trace_log: TraceLog) -> None:
    world = make_world()
    gate = gate_for(world, TraceDecisionRecorder(recorder_of(trace_log, world.support)))
    member = world.credential(world.support_chain, world.support)
    assert gate.invoke(member, "refund", {"order_id": "o1", "amount": 20}).allowed
    assert not gate.invoke(member, "refund", {"order_id": "o2", "amount": 5000}).allowed
    assert not gate.invoke(member, "export_customers", {"fmt": "csv"}).allowed
    made = records(trace_log)
    assert [(r.kind, r.tool.name if r.tool else None) for r in made] == [
        (Kind.TOOL_INVOCATION, "refund"),
        (Kind.DENIAL, "refund"),
        (Kind.DENIAL, "export_customers"),
    ]
    decisions = [r.decision for r in made]
    assert [(d.outcome, d.bundle, d.policies) for d in decisions if d is not None] == [
        ("allowed", "1", ("refund",)),
        ("forbidden", "1", ("refund-cap",)),
        ("unknown-request", "1", ()),
    ]
    digest = sha256(world.support_chain)
    assert all(r.agent == world.support.identifier for r in made)
    assert all(r.authority is not None and r.authority.chain == digest for r in made)
    assert trace_log.chain(digest) == world.support_chain  # kept: verifiable offline
    assert disclosed(trace_log, made[1], "args") == {"order_id": "o2", "amount": 5000}
    assert disclosed(trace_log, made[1], "result")["reason"] == "denied by policy refund-cap"
    report = verify_log(trace_log)
    assert (report.size, report.chains_checked) == (3, 3)


def test_a_call_denied_by_a_caveat_is_recorded_with_the_caveat(trace_log: TraceLog) -> None:
    world = make_world(sub_caveats=('context.args.order_id == "4471"',))
    gate = gate_for(world, TraceDecisionRecorder(recorder_of(trace_log, world.sub)))
    sub = world.credential(world.sub_chain, world.sub)
    assert gate.invoke(sub, "lookup_order", {"order_id": "4471"}).allowed
    denied = gate.invoke(sub, "lookup_order", {"order_id": "9999"})
    assert not denied.allowed
    allowed, refused = records(trace_log)
    assert (allowed.kind, refused.kind) == (Kind.TOOL_INVOCATION, Kind.DENIAL)
    assert refused.decision is not None
    assert refused.decision.outcome == "forbidden"
    assert any("caveat" in policy for policy in refused.decision.policies)
    assert verify_log(trace_log).chains_checked == 2


def test_a_gate_run_for_another_caller_names_the_caller(trace_log: TraceLog) -> None:
    world = make_world()
    gatekeeper = make_party(world.vault, now=T)  # a tool server deciding support's calls
    gate = gate_for(world, TraceDecisionRecorder(recorder_of(trace_log, gatekeeper)))
    member = world.credential(world.support_chain, world.support)
    gate.invoke(member, "lookup_order", {"order_id": "o1"})
    (made,) = records(trace_log)
    assert (made.agent, made.authority) == (gatekeeper.identifier, None)
    caller = disclosed(trace_log, made, "inputs")["caller"]
    assert caller["actor"] == str(world.support.identifier)
    assert caller["chain"] == sha256(world.support_chain).hex()


def test_a_recorder_that_cannot_record_stops_the_call(trace_log: TraceLog) -> None:
    world = make_world()
    ran: list[str] = []

    class Broken:
        agent = world.support.identifier

        def record(
            self,
            content: RecordContent,
            *,
            chain: bytes | None = None,
            source: Identifier | None = None,
        ) -> Receipt:
            raise StorageError("disk full")

    def counted(order_id: str) -> str:
        ran.append(order_id)
        return order_id

    store = world.store(world.bundle())
    gate = ToolGate(
        DecisionPoint(store, world.held_feed, recorder=TraceDecisionRecorder(Broken())),
        [Tool.from_function(counted, name="lookup_order")],
        clock=FixedClock(NOW),
    )
    member = world.credential(world.support_chain, world.support)
    with pytest.raises(StorageError, match=r"disk full"):
        gate.invoke(member, "lookup_order", {"order_id": "o1"})
    assert ran == []


# -- the broker ---------------------------------------------------------------------------------


def test_the_broker_records_leases_and_no_secret_value_reaches_the_trace(tmp_path: Path) -> None:
    now = 1_790_000_000
    world = lease_world(now)
    broker_party = make_party(world.vault, now=now)
    clock = FixedClock(now)
    log = TraceLog.open(tmp_path / "trace.db", clock=clock, signer=lambda n: broker_party.signer)
    sink = TraceAuditSink(TraceRecorder(log, broker_party.signer, clock=clock))
    policy = AllowListPolicy({world.agent_a.identifier: {"payments": None, "api": None}})
    _db, broker = open_broker(tmp_path / "node.db", now=now, policy=policy, audit=sink)
    config = {"scopes": ["refunds:write"], "ttl": 120, "max_ttl": 600, "audience": "payments"}
    broker.put_secret("payments", "token", config, b"", now=now)
    inject = {
        "scopes": ["orders:read"],
        "ttl": 120,
        "max_ttl": 600,
        "upstream": "http://127.0.0.1:9/api",
        "header": "Authorization",
        "rules": [{"methods": ["GET"], "path": "/v1/orders/*", "scope": "orders:read"}],
    }
    broker.put_secret("api", "http-inject", inject, f"Bearer {CANARY}".encode(), now=now)
    token_lease = broker.issue(world.credential_a(), "payments", now=now)
    api_lease = broker.issue(world.credential_a(), "api", now=now)
    broker.renew(world.credential_a(), token_lease.lease_id, now=now + 10)
    broker.revoke(world.credential_a(), api_lease.lease_id, now=now + 20)
    with pytest.raises(SecretError) as raised:
        broker.issue(world.credential_b(), "payments", now=now + 30)  # not allowed: denied
    assert raised.value.reason is SecretFailure.DENIED
    made = records(log)
    kinds = [(r.kind, r.decision.outcome if r.decision else None) for r in made]
    assert (Kind.LEASE, "issue") in kinds
    assert (Kind.LEASE, "renew") in kinds
    assert (Kind.LEASE, "revoke") in kinds
    assert (Kind.DENIAL, "deny") in kinds
    assert all(r.agent == broker_party.identifier for r in made)
    issued = next(r for r in made if r.decision and r.decision.outcome == "issue")
    event = disclosed(log, issued, "args")
    assert event["identity"] == str(world.agent_a.identifier)
    assert verify_log(log).size == len(made)
    log.close()
    secrets = [
        CANARY,
        str(token_lease.credential.reveal()["token"]),
        token_lease.lease_id.text(),
        api_lease.lease_id.text(),
    ]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("trace.db*"))
    assert len(stored) > 10_000  # the scan reads the log's pages (and any WAL)
    for secret in secrets:
        assert secret.encode() not in stored, secret
        assert secret.encode().hex().encode() not in stored


# -- delegations and revocations ----------------------------------------------------------------


def test_the_api_records_delegations_and_revocations(clock: FixedClock) -> None:
    hub = troth.Node.open("acme", clock=clock)
    agents = troth.Node.open("agents", clock=clock)
    acme = hub.create_authority()
    customer = agents.identities.create("customer")
    support = agents.identities.create("support-agent")
    ticket = acme.ticket({"orders.customer": "4471", "orders.access": ["read", "write"]})
    member = agents.enroll(ticket, identity=customer)
    to_support = agents.delegate(
        customer, to=support, attributes={"orders.access": "read"}, ttl=600, purpose="complaint"
    )
    agents.revoke(to_support, by=customer, reason="resolved")
    acme.revoke(member, reason="left")
    agents.close()
    hub.close()
    with open_node("agents", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        delegation, revocation = records(log)
        assert (delegation.kind, delegation.agent) == (Kind.DELEGATION, customer.identifier)
        assert delegation.tool is not None
        assert delegation.tool.call == to_support.id.hex()  # what `troth revoke link` takes
        assert delegation.authority is not None
        assert log.chain(delegation.authority.chain) == member.chain  # under the customer's
        args = disclosed(log, delegation, "args")
        assert (args["to"], args["purpose"]) == (str(support.identifier), "complaint")
        assert (revocation.kind, revocation.agent) == (Kind.REVOCATION, customer.identifier)
        assert disclosed(log, revocation, "args")["reason"] == "resolved"
        assert verify_log(log).size == 2
    with open_node("acme", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        (by_authority,) = records(log)
        assert (by_authority.kind, by_authority.agent) == (Kind.REVOCATION, acme.identifier)
        assert by_authority.tool is not None
        assert by_authority.tool.name == "revoke credential"
        assert disclosed(log, by_authority, "result") == {"feed_entry": 1}


def customer_and_support() -> tuple[str, str]:
    """acme, a customer enrolled with it (orders.access=read), a support agent: identifiers of
    acme and the support agent."""
    acme = run_json("authority", "create", "acme")["identifier"]
    run("identity", "create", "customer")
    support = run_json("identity", "create", "support")["identifier"]
    ticket = run(
        "authority", "ticket", "create", "--authority", "acme", "--attr", "orders.access=read"
    ).stdout.strip()
    run("enroll", ticket, "--as", "customer")
    return acme, support


def delegate(support: str, out: Path, code: int = 0) -> Any:
    args = ("--to", support, "--ttl", "10m", "--purpose", "complaint 123", "--out", str(out))
    return run_json("credential", "delegate", "--as", "customer", *args, code=code)


def test_the_cli_records_delegations_and_revocations(tmp_path: Path) -> None:
    acme, support = customer_and_support()
    out = tmp_path / "to-support.chain"
    link = delegate(support, out)["chain"][-1]["id"]
    by_customer = ("--as", "customer", "--authority", "acme", "--reason", "resolved")
    run("revoke", "link", link, "--chain", str(out), *by_customer)
    tree = run_json("trace", "show")
    assert [(n["agent"], n["kind"], n.get("call")) for n in tree] == [
        ("customer", "delegation", link),
        ("customer", "revocation", link),
    ]
    assert tree[0]["authority"] == acme  # under the credential acme issued the customer
    assert run_json("trace", "verify")["records"] == 2
    text = run("trace", "show").stdout
    assert "customer  delegation  tool delegate" in text


def test_a_delegation_that_cannot_be_recorded_is_not_handed_out(tmp_path: Path) -> None:
    _acme, support = customer_and_support()
    log_file = troth_home() / "nodes" / "default" / "trace.db"
    log_file.mkdir(parents=True)  # the log cannot be opened
    out = tmp_path / "chain"
    assert delegate(support, out, code=4)["error"] == "StorageError"
    assert not out.exists()


# -- a human resolves an escalation ------------------------------------------------------------


def resolve(record: str, human: str, code: int = 0) -> Any:
    args = ("--outcome", "approved", "--considered", "x", "--reasoning", "y")
    return run_json("trace", "resolve", record, "--as", human, *args, code=code)


def test_a_human_resolves_an_escalation_with_the_cli() -> None:
    run("identity", "create", "support")
    alice = run_json("identity", "create", "alice")["identifier"]
    run("identity", "create", "bob")
    clock = SystemClock()
    with open_node("default", home=troth_home()) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        step = agent.record(tool_call())
        asked = agent.escalate(
            troth.Identifier.parse(alice), question="refund 5000?", parent=step.record
        )
    refused = resolve(asked.record, "bob", code=1)
    assert refused["reason"] == "linked record missing or of the wrong kind"
    not_asked = resolve(step.record, "alice", code=1)
    assert "is not an escalation" in not_asked["detail"]
    done = run_json(
        "trace",
        "resolve",
        asked.record,
        "--as",
        "alice",
        "--outcome",
        "approved",
        "--considered",
        "order history: 12 orders, no refunds",
        "--reasoning",
        "a loyal customer; the amount is within what a manager may approve",
    )
    assert done["resolves"] == asked.record
    tree = run_json("trace", "show")
    resolution = tree[0]["children"][0]["children"][0]
    assert (resolution["agent"], resolution["kind"], resolution["decision"]) == (
        "alice",
        "resolution",
        "approved",
    )
    assert run_json("trace", "verify")["records"] == 3
