"""Review 57j: attacks on this session's new gates and traces code that did not work (each test
fails if the defence it shows breaks).

Gates: 57a's `DormantBundles` (a table bundle that did not load keeps its services under Cedar
and puts the revision it replaced out of force). Denial of service: only a bundle the node
verified in full is stored by it (a member's, a forger's are refused and leave nothing
dormant); a dormant bundle is forgotten when a good one takes its place, when its authority is
no longer trusted, and at a restart that loads it. Traces: 57h's span processor, sampler and
terminal export.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    Sampler,
    SamplingResult,
    StaticSampler,
)
from opentelemetry.trace import TraceState

from tests.support.cli import run
from tests.support.gates import POLICIES, GatesWorld, T, make_world
from tests.support.parties import make_party
from tests.support.traces import tool_call
from tests.test_gates_services import SERVICES
from tests.test_review57a_gates import NO_LOOKUP, _no_child
from tests.test_review57h_cli import _export_to, _Terminal
from tests.test_review57h_otel import FLOOD, TOOL, _records, _signing, _signing_sampler
from troth.clock import SystemClock
from troth.credentials import ChainVerifier, TrustPolicy
from troth.errors import PolicyError
from troth.gates import BundleStore, ToolCall, bundles, create_bundle
from troth.node import open_node
from troth.trace import TraceRecorder, open_node_log
from troth.trace.otel import SigningSampler
from troth.trace.record import Kind

CALL = ToolCall("lookup_order", {"order_id": "o"})
TIGHTER = "// " + "x" * 40_000 + "\n" + POLICIES + NO_LOOKUP  # validated in a child


def _dormant_newer(
    world: GatesWorld, monkeypatch: pytest.MonkeyPatch, *, declared: bool = True
) -> BundleStore:
    """A running store holding revision 1 (lookups permitted; the services declared when
    `declared`) whose table holds revision 2 (lookups forbidden, the services declared),
    stored by another process, that its reload could not check."""
    running = world.store(world.bundle(revision=1, services=SERVICES if declared else None))
    pushed = BundleStore(world.verifier, running.table)  # the CLI's store
    newer = world.bundle(revision=2, policies=TIGHTER, services=SERVICES)
    pushed.accept(newer, feeds=world.feeds(), now=T + 6)
    with monkeypatch.context() as patched:
        _no_child(patched)
        assert running.reload(now=T + 10) == []
    assert running.dormant.unloaded()
    return running


def test_a_members_higher_revision_is_refused_and_leaves_nothing_dormant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    running = world.store(world.bundle(revision=1))
    with monkeypatch.context() as patched:  # made as if its chain were a policy-admin's
        patched.setattr(bundles, "_check_admin_chain", lambda *args: T + 86_400)
        forged = create_bundle(
            world.support.signer,  # a member, no policy-admin
            authority=world.authority.identifier,
            policies='@id("all") permit(principal, action, resource);',
            schema="",
            tools={},
            revision=99,
            now=T,
            ttl=3600,
            chain=world.support_chain,
        )
    with pytest.raises(PolicyError):
        running.accept(forged, feeds=world.feeds(), now=T + 5)
    assert running.table.stamps()[world.authority.identifier.digest][0] == 1
    assert running.reload(now=T + 10) == []
    assert running.dormant.unloaded() == []
    member = world.credential(world.support_chain, world.support)
    assert world.point(running).decide(member, CALL, now=T + 10).allowed


def test_a_dormant_bundle_gives_way_to_a_good_higher_revision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    running = _dormant_newer(world, monkeypatch)
    member = world.credential(world.support_chain, world.support)
    assert not world.point(running).decide(member, CALL, now=T + 10).allowed
    running.accept(world.bundle(revision=3), feeds=world.feeds(), now=T + 11)
    assert running.dormant.unloaded() == []
    assert not running.declares("orders")  # revision 3 declares no service
    decision = world.point(running).decide(member, CALL, now=T + 12)
    assert decision.allowed
    assert decision.revision == 3
    restarted = BundleStore(world.verifier, running.table)
    assert [v.body.revision for v in restarted.reload(now=T + 12)] == [3]
    assert restarted.dormant.unloaded() == []


def test_a_dormant_bundle_is_forgotten_with_its_authority_and_loads_at_a_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    running = _dormant_newer(world, monkeypatch)
    assert running.declares("orders")
    other = make_party(world.vault, now=T).identifier
    running.use(ChainVerifier(TrustPolicy(frozenset({other}))))  # acme no longer trusted
    running.reload(now=T + 11)
    assert running.dormant.unloaded() == []
    restarted = BundleStore(world.verifier, running.table)  # trusted again, the child runs
    assert [v.body.revision for v in restarted.reload(now=T + 12)] == [2]
    assert restarted.dormant.unloaded() == []
    member = world.credential(world.support_chain, world.support)
    decision = world.point(restarted).decide(member, CALL, now=T + 12)
    assert not decision.allowed
    assert decision.policies == ("no-lookup",)


def test_a_dormant_bundle_keeps_the_services_it_declares_under_cedar_for_its_authority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The older revision declares no service; the dormant one's declarations hold, for its
    authority only and by their names as written (as an active bundle's), and the older one
    decides nothing meanwhile."""
    world = make_world()
    running = _dormant_newer(world, monkeypatch, declared=False)
    acme = world.authority.identifier
    other = make_party(world.vault, now=T).identifier
    for name in SERVICES:
        assert running.declares(name)
        assert running.declares(name, acme)
        assert not running.declares(name, other)
        assert not running.declares(name.upper())
    with pytest.raises(PolicyError):
        running.engine(acme, feed=world.feed, now=T + 10)


# -- traces ----------------------------------------------------------------------------------

NASTY = {"\u202ek\\\u009b": "\\\u009b2J \u2066x\u2069 \\u0085 \u0085 \\", "n": [1, "\u061c"]}


def test_a_terminal_export_parses_as_the_piped_one(
    troth_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escaping what a terminal acts on keeps the same JSON, keys included, with a backslash
    before each escaped character and a literal `\\u0085` text beside a real one."""
    run("identity", "create", "support")
    clock = SystemClock()
    with open_node("default", home=troth_home) as node, open_node_log(node, clock=clock) as log:
        agent = TraceRecorder(
            log, lambda now: node.identities.signer("support", now=now), clock=clock
        )
        agent.record(tool_call(args=NASTY, result="\u009d52;c;x\u009c"))
    shown = _export_to(_Terminal(), monkeypatch)
    piped = _export_to(io.StringIO(), monkeypatch)
    assert not any(c in shown for c in "\u202e\u009b\u2066\u2069\u0085\u061c\u009d")
    lines = shown.rstrip("\n").split("\n")  # not splitlines: U+0085 is a line end to it
    assert [json.loads(line) for line in lines] == [
        json.loads(line) for line in piped.rstrip("\n").split("\n")
    ]
    (line,) = lines
    assert json.loads(line)["disclosures"]["args"]["value"] == NASTY


def test_a_span_started_on_one_thread_and_flooded_and_ended_on_another_stays_a_denial(
    tmp_path: Path,
) -> None:
    log, processor, tracer = _signing(tmp_path, _signing_sampler())
    span = tracer.start_span("execute_tool refund", attributes={**TOOL, "troth.decision": "deny"})

    def elsewhere() -> None:
        for n in range(FLOOD):
            span.set_attribute(f"app.tool.arg.k{n}", n)
        span.end()

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join()
    assert (processor.recorded, processor._started) == (1, {})
    (record,) = _records(log)
    assert record.kind is Kind.DENIAL


def test_a_span_whose_operation_changes_type_is_not_signed_and_not_kept(tmp_path: Path) -> None:
    _log, processor, tracer = _signing(tmp_path, _signing_sampler())
    with tracer.start_as_current_span("execute_tool refund", attributes=TOOL) as span:
        span.set_attribute("gen_ai.operation.name", ["execute_tool"])  # the later value wins
    assert (processor.recorded, processor.failures, processor._started) == (0, 0, {})


class _Odd(Sampler):
    """An inner sampler with a decision of its own for every span."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(self.decision, {"odd": 1}, TraceState([("k", "v")]))

    def get_description(self) -> str:
        return "odd"


@pytest.mark.parametrize("decision", [Decision.RECORD_ONLY, Decision.RECORD_AND_SAMPLE])
def test_the_sampler_passes_a_recording_decision_as_it_is(decision: Decision) -> None:
    inner = _Odd(decision)
    for name in ("execute_tool refund", "chat"):
        result = SigningSampler(inner).should_sample(Context(), 1, name, attributes=TOOL)
        assert result.decision is decision
        assert dict(result.attributes) == {"odd": 1}


def test_the_sampler_records_only_the_signed_spans_its_inner_one_drops() -> None:
    sampler = SigningSampler(_Odd(Decision.DROP))
    kept = sampler.should_sample(Context(), 1, "execute_tool refund", attributes=TOOL)
    assert kept.decision is Decision.RECORD_ONLY  # recorded, not sampled: not exported
    assert kept.trace_state == TraceState([("k", "v")])
    for name, attributes in (("chat", None), ("execute_tool x", {"gen_ai.operation.name": "chat"})):
        dropped = sampler.should_sample(Context(), 1, name, attributes=attributes)
        assert dropped.decision is Decision.DROP
    assert (
        SigningSampler(ALWAYS_OFF).should_sample(Context(), 1, "invoke_agent a").decision
        is Decision.RECORD_ONLY
    )
    assert isinstance(ALWAYS_OFF, StaticSampler)
