"""Adversarial review, round 5: gate evaluation, the MCP gate, trace collection and leases.

Each test asserts the secure behaviour and fails on the code it was written against (marked
xfail strict until the lead fixes it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp import Client

from tests.support.gates import TOOLS, T, make_world
from tests.support.leases import open_broker
from tests.support.mcp_orders import orders_server, text
from tests.support.parties import make_party
from troth import limits
from troth.clock import FixedClock
from troth.credentials import Attributes, CredentialChain, VerifiedCredential, delegate
from troth.errors import SecretError, SecretFailure
from troth.gates import Outcome, Tool, ToolGate
from troth.integrations.mcp.gate import DENIED_PREFIX, McpGate, gate_server
from troth.secrets import GatesLeasePolicy
from troth.trace import TraceLog, TraceRecorder
from troth.trace.adapters import TraceDecisionRecorder

NOW = T + 10
ACCESS = 'principal.hasTag("orders.access")'


def _gate(
    policies: str, tools: dict[str, Any], *functions: Callable[..., str]
) -> tuple[ToolGate, VerifiedCredential]:
    world = make_world()
    store = world.store(world.bundle(policies=policies, tools=tools))
    declared = [Tool.from_function(f) for f in functions]
    gate = ToolGate(world.point(store), declared, clock=FixedClock(NOW))
    return gate, world.credential(world.support_chain, world.support)


# -- gate evaluation: what Cedar judges is not what the tool runs ------------------------------


def test_an_omitted_argument_is_judged_with_the_default_the_tool_runs_with() -> None:
    # The author follows docs/policy.md ("Optional arguments need `context.args has note`") to
    # forbid exports in clear CSV. The agent omits `fmt`: Cedar sees no `fmt`, the forbid does
    # not apply, and the tool runs with its default, "csv".
    ran: list[str] = []

    def export_customers(fmt: Literal["csv", "json"] = "csv") -> str:
        """Export every customer."""
        ran.append(fmt)
        return f"customers.{fmt}"

    policies = f"""\
@id("export") permit(principal, action == Action::"invoke:export_customers", resource)
  when {{ {ACCESS} }};
@id("no-csv") forbid(principal, action == Action::"invoke:export_customers", resource)
  when {{ context.args has fmt && context.args.fmt == "csv" }};
"""
    tools = {"export_customers": TOOLS["export_customers"]}
    gate, member = _gate(policies, tools, export_customers)
    explicit = gate.invoke(member, "export_customers", {"fmt": "csv"})
    assert explicit.decision.policies == ("no-csv",)
    assert not explicit.allowed
    omitted = gate.invoke(member, "export_customers", {})
    assert ran == []  # the CSV export must not run
    assert not omitted.allowed


def test_an_omitted_argument_through_the_mcp_gate_is_judged_with_its_default() -> None:
    policies = f"""\
@id("export") permit(principal, action == Action::"invoke:export_customers", resource)
  when {{ {ACCESS} }};
@id("no-csv") forbid(principal, action == Action::"invoke:export_customers", resource)
  when {{ context.args has fmt && context.args.fmt == "csv" }};
"""

    async def main() -> list[tuple[bool, str]]:
        world = make_world()
        point = world.point(world.store(world.bundle(policies=policies)))
        member = world.credential(world.support_chain, world.support)
        results = []
        async with Client(orders_server(), cache=None) as upstream:
            gate = McpGate(point, upstream, clock=FixedClock(NOW))
            async with Client(gate_server(gate, member), mode="legacy", cache=None) as agent:
                for args in ({"fmt": "csv"}, {}):
                    result = await agent.call_tool("export_customers", args)
                    results.append((result.is_error, text(result)))
        return results

    explicit, omitted = anyio.run(main)
    assert explicit == (True, DENIED_PREFIX + "denied by policy no-csv")
    assert omitted[1] != "customers.csv"  # the upstream ran the forbidden CSV export
    assert omitted[0]


# -- the MCP gate: what a caller makes the serving node store -----------------------------------


def test_denied_calls_cannot_fill_the_serving_nodes_trace_log(tmp_path: Path) -> None:
    world = make_world()
    server = make_party(world.vault, now=T)  # the node publishing the MCP server
    log_path = tmp_path / "trace.db"
    log = TraceLog.open(log_path, clock=FixedClock(NOW), signer=lambda n: server.signer)
    recorder = TraceDecisionRecorder(TraceRecorder(log, server.signer, clock=FixedClock(NOW)))
    point = world.point(world.store(world.bundle()), recorder)
    member = world.credential(world.sub_chain, world.sub)  # a read-only, delegated caller
    pad = "A" * (250 * 1024)  # under MAX_TRACE_DISCLOSURE_BYTES: kept in clear
    calls = 40  # 40 requests of ~0.5 MiB: 20 MiB, one MCP frame each

    async def main() -> int:
        denied = 0
        async with Client(orders_server(), cache=None) as upstream:
            gate = McpGate(point, upstream, clock=FixedClock(NOW))
            async with Client(gate_server(gate, member), mode="legacy", cache=None) as agent:
                for n in range(calls):
                    result = await agent.call_tool(f"{pad}{n}", {"pad": pad})
                    denied += result.is_error
        return denied

    assert anyio.run(main) == calls
    log.close()
    stored = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith("trace.db"))
    assert stored <= limits.TRACE_SUBMIT_BURST_BYTES, f"{stored} bytes stored for one caller"


def transfer(account: int, amount: int) -> str:
    """Move money to an account."""
    return f"moved {amount} to {account}"


def test_an_integer_past_2_53_is_refused_not_judged_as_another_number() -> None:
    # A frozen account is forbidden by number. 2^53 + 1 is not that number for Cedar (i64),
    # but every double-based JSON parser (JavaScript's JSON.parse: the TypeScript MCP SDK's
    # servers) reads it as 2^53, the frozen account. troth holds all JSON it reads to RFC 7493
    # (integers within +-(2^53 - 1): docs/formats.md); tool arguments must be held to it too.
    frozen = 2**53
    smuggled = frozen + 1
    assert float(smuggled) == frozen  # what a double-based upstream acts on
    policies = f"""\
@id("transfer") permit(principal, action == Action::"invoke:transfer", resource)
  when {{ {ACCESS} }};
@id("frozen") forbid(principal, action == Action::"invoke:transfer", resource)
  when {{ context.args.account == {frozen} }};
"""
    schema = Tool.from_function(transfer).input_schema
    gate, member = _gate(policies, {"transfer": schema}, transfer)
    allowed = gate.invoke(member, "transfer", {"account": frozen - 1, "amount": 5})
    assert allowed.allowed  # the largest safe integer is judged as it is
    direct = gate.invoke(member, "transfer", {"account": frozen, "amount": 5})
    assert not direct.allowed  # 2^53 itself is past I-JSON's range
    assert direct.decision.outcome is Outcome.ARGUMENTS
    smuggled_call = gate.invoke(member, "transfer", {"account": smuggled, "amount": 5})
    assert not smuggled_call.allowed
    assert smuggled_call.decision.outcome is Outcome.ARGUMENTS


# -- leases ----------------------------------------------------------------------------------


def test_a_members_delegates_share_its_lease_quota(tmp_path: Path) -> None:
    # The policy grants leases by attribute (docs/secrets.md, "Per-agent scopes are policy"),
    # so a delegate the member mints inherits the right. Every lease of a postgres secret is a
    # database role: the quota is what bounds them (house rule: limits per source).
    world = make_world()
    policies = f"""\
@id("lease-payments") permit(principal, action == Action::"lease", resource == Secret::"payments")
  when {{ {ACCESS} }};
"""
    point = world.point(world.store(world.bundle(policies=policies)))
    _db, broker = open_broker(
        tmp_path / "node.db", now=NOW, policy=GatesLeasePolicy(point), quota=3
    )
    config = {"scopes": ["refunds"], "ttl": 120, "max_ttl": 600, "audience": "payments"}
    broker.put_secret("payments", "token", config, b"", now=NOW)
    member = world.credential(world.support_chain, world.support)
    for _ in range(3):
        broker.issue(member, "payments", now=NOW)
    with pytest.raises(SecretError) as full:
        broker.issue(member, "payments", now=NOW)
    assert full.value.reason is SecretFailure.QUOTA_EXCEEDED
    held, refusals = 3, []
    for _ in range(3):  # each fresh delegate: three more leases of the member's authority
        fresh = make_party(world.vault, now=T)
        chain = delegate(
            world.support.signer,
            CredentialChain.decode(world.support_chain),
            subject=fresh.identifier,
            attributes=Attributes({"orders.access": "read"}),
            now=T,
            ttl=86_400,
            purpose="one more quota",
        )
        delegated = world.credential(chain.encode(), fresh)
        for _ in range(3):
            try:
                broker.issue(delegated, "payments", now=NOW)
            except SecretError as exc:
                refusals.append(exc.reason)
                continue
            held += 1
    assert set(refusals) <= {SecretFailure.QUOTA_EXCEEDED}  # refused for the quota, not else
    assert held <= 3
