"""Review 48t, gates 1: a tool hidden from a caller and a name the bundle does not declare are
answered alike (review 47h), and must cost the engine the same work, or a careful timer tells
them apart: before, a hidden tool's denial ran Cedar on the call and then looked its
visibility up (the first time for a caller: a partial evaluation of every tool), where a
made-up name was refused before Cedar ran and before any visibility lookup.

No time is measured: the engine's work is counted (Cedar evaluations, full and partial; the
engine's per-chain cache lookups and stores; the visibility lookups), for a fresh caller's
first call and for later calls, on a fresh engine for each name."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import cedarpy
import pytest

from tests.support.gates import GatesWorld, T, make_world
from tests.test_attacks_review22b_gates import _nested_sets
from tests.test_review47h_hidden import _caller, _gate
from troth.gates import ListRecorder, Outcome, ToolCall, ToolGate
from troth.gates import engine as engine_module
from troth.gates.cedar_call import answer_fields, partial_shows
from troth.gates.engine import PolicyEngine

MADE_UP = "not_a_tool"
UNDECLARED = "denied: the policy bundle declares no such tool"

# (caller, hidden tool, arguments, the outcome recorded for the hidden tool)
HIDDEN: list[tuple[str, str, Any, Outcome]] = [
    ("sub", "refund", {"order_id": "o1", "amount": 1}, Outcome.NO_PERMIT),
    ("sub", "refund", {"order_id": "o1", "amount": 5000}, Outcome.FORBIDDEN),
    ("sub", "refund", {"order_id": "o1"}, Outcome.ARGUMENTS),
    ("sub", "refund", ["not", "an object"], Outcome.ARGUMENTS),
    ("support", "export_customers", {"fmt": "csv"}, Outcome.NO_PERMIT),
    ("support", "export_customers", {"fmt": "xml"}, Outcome.ARGUMENTS),
]


@pytest.fixture(scope="module")
def world() -> GatesWorld:
    return make_world()


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts, by name, the engine's calls that cost work."""
    counts: Counter[str] = Counter()

    def counted(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return func(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(engine_module, "answer_fields", counted("cedar", answer_fields))
    monkeypatch.setattr(  # one per tool previewed, whichever cedarpy function runs it
        engine_module, "partial_shows", counted("partial", partial_shows)
    )
    monkeypatch.setattr(
        cedarpy.Entities,
        "from_json_str",
        counted("entities", cedarpy.Entities.from_json_str),
    )
    bounded = engine_module._Bounded
    monkeypatch.setattr(bounded, "get", counted("cache.get", dict.get), raising=False)
    monkeypatch.setattr(bounded, "put", counted("cache.put", bounded.put))
    monkeypatch.setattr(
        PolicyEngine, "_preview", counted("visible", PolicyEngine._preview)
    )  # every visibility lookup (`visible_tools` and `told` both; review 55n, preview 1)
    return counts


def _calls(
    world: GatesWorld, work: Counter[str], gate: ToolGate, who: str, tool: str, arguments: Any
) -> list[Counter[str]]:
    """The work of three calls of `tool` by one fresh caller on `gate`'s fresh engine: its
    first call, then two warm ones (each told as undeclared)."""
    caller = _caller(world, who)
    seen: list[Counter[str]] = []
    for _ in range(3):
        work.clear()
        result = gate.invoke(caller, tool, arguments)
        assert result.decision.reason == UNDECLARED
        seen.append(Counter(work))
    return seen


@pytest.mark.parametrize(("who", "tool", "arguments", "recorded"), HIDDEN)
def test_a_hidden_tool_and_a_made_up_name_cost_the_same_work(
    world: GatesWorld, work: Counter[str], who: str, tool: str, arguments: Any, recorded: Outcome
) -> None:
    recorder = ListRecorder()
    hidden = _calls(world, work, _gate(world, recorder), who, tool, arguments)
    made_up = _calls(world, work, _gate(world, recorder), who, MADE_UP, arguments)
    assert hidden == made_up
    # the first call computes the caller's visibility (one partial evaluation per tool of the
    # bundle), the later ones look it up; both run Cedar once per call
    assert hidden[0]["partial"] == 3
    assert hidden[1]["partial"] == 0
    assert all(c["cedar"] == 1 for c in hidden)
    assert all(c["visible"] == 1 for c in hidden)
    # the records keep the real decisions (review 47h)
    outcomes = [r.decision.outcome for r in recorder.records]
    assert outcomes == [recorded] * 3 + [Outcome.UNKNOWN_REQUEST] * 3


def test_the_engine_alone_costs_the_same_for_both(world: GatesWorld, work: Counter[str]) -> None:
    """`DecisionPoint.judge_tool` without a declared schema (as `troth policy test` asks)."""
    seen: dict[str, list[Counter[str]]] = {}
    for tool in ("refund", MADE_UP):
        point = world.point(world.store(world.bundle()))
        caller = _caller(world, "sub")
        seen[tool] = []
        for _ in range(2):
            work.clear()
            _, told = point.judge_tool(
                caller, ToolCall(tool, {"order_id": "o1", "amount": 1}), now=T + 10
            )
            assert told.reason == UNDECLARED
            seen[tool].append(Counter(work))
    assert seen["refund"] == seen[MADE_UP]


def test_an_allowed_call_costs_no_visibility_lookup(world: GatesWorld, work: Counter[str]) -> None:
    """The allowed path is unchanged: one Cedar evaluation, no visibility lookup."""
    gate = _gate(world, ListRecorder())
    caller = _caller(world, "sub")
    gate.invoke(caller, "lookup_order", {"order_id": "o1"})
    work.clear()
    assert gate.invoke(caller, "lookup_order", {"order_id": "o1"}).allowed
    assert (work["cedar"], work["partial"], work["visible"]) == (1, 0, 0)


def test_a_refused_caveat_costs_the_same_for_both(work: Counter[str]) -> None:
    """A caller whose caveat is no Cedar condition is told that refusal for every name (review
    47n): no Cedar runs for it, for a made-up name as for a bundle tool, and the lookups match."""
    world = make_world(sub_caveats=(_nested_sets(),))
    seen: dict[str, list[Counter[str]]] = {}
    for tool in ("refund", MADE_UP):
        gate = _gate(world, ListRecorder())
        caller = _caller(world, "sub")
        seen[tool] = []
        for _ in range(2):
            work.clear()
            decision = gate.invoke(caller, tool, {"order_id": "o1", "amount": 1}).decision
            assert decision.outcome is Outcome.CAVEAT_INVALID
            seen[tool].append(Counter(work))
    assert seen["refund"] == seen[MADE_UP]
    assert all(c["cedar"] == c["partial"] == 0 for c in seen["refund"])


def test_a_bundle_declaring_the_placeholder_action_still_denies(
    world: GatesWorld, work: Counter[str]
) -> None:
    """A schema fragment may declare the placeholder's action itself: the placeholder schema
    cannot be composed, the bundle's own is used (Cedar refuses the request: still one call),
    and a made-up name is denied as before."""
    fragment = 'action "invoke:*" appliesTo { principal: [Agent], resource: [Tool] };\n'
    point = world.point(world.store(world.bundle(schema=fragment)))
    caller = _caller(world, "sub")
    record, told = point.judge_tool(caller, ToolCall(MADE_UP, {}), now=T + 10)
    assert record.decision.outcome is Outcome.UNKNOWN_REQUEST
    assert told.reason == UNDECLARED
    assert work["cedar"] == 1
    engine = point.bundles.engine(world.authority.identifier, feed=world.feed, now=T + 10)
    assert engine._placeholder_schema() is engine.compiled.schema  # the fallback was taken
