"""Review 65m (review of 65g's tool listing), gates findings with their fixes.

Gates 1. (medium: CPU, the GIL held, by a member's free delegates) 65g previews a tool with its
   arguments a record of unknowns (`preview_context`). A caveat reading the arguments as a
   whole value (`context.args == context.args`, repeated within MAX_CHAIN_CAVEAT_TEXT) then had
   each use written out in Cedar's answer with every property's unknown, for each tool: ~600 KB
   of residuals a tool at 64 properties, a preview ~40 times the work its member was charged
   (`PreviewBudgets` counts policies x tools): 5.2 s for 100 such tools where it took 0.12 s,
   ~27 s at MAX_TOOLS, for one chain a member mints for free. A chain whose caveats read the
   context or its arguments whole (`preview_sets.arguments_named`) is previewed with the
   context unknown whole, as before 65g (sound: such a tool is only shown more, and every call
   is decided), and so is every chain under a bundle whose policies do (a co-trusted
   authority's bundle, previewed by its members' delegates); caveats and policies naming what
   they read keep 65g's hiding. The work is measured as the
   bytes of Cedar's answers (`cedar_call`'s native call wrapped), not as time.
"""

from __future__ import annotations

from typing import Any

import pytest

import troth.gates.cedar_call as cedar_call
from tests.support.gates import T, make_world
from troth.clock import FixedClock
from troth.gates import ListRecorder, Tool, ToolGate

PROPERTIES = 64
SCHEMA = {
    "type": "object",
    "properties": {f"p{i}": {"type": "string"} for i in range(PROPERTIES)},
    "required": [f"p{i}" for i in range(PROPERTIES)],
}
ARGS = {f"p{i}": "x" for i in range(PROPERTIES)}
WHOLE = " && ".join(["context.args == context.args"] * 16)  # ~530 characters


ALL = '@id("all") permit(principal, action in Action::"invoke", resource);\n'


def _listing(
    caveats: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, policies: str = ALL
) -> tuple[list[str], int]:
    """The tools (two of 64 properties) shown to a delegate with `caveats` under `policies`,
    and the bytes of Cedar's answers its preview took."""
    answered = [0]
    native = cedar_call._native_partial
    assert native is not None

    def counted(*args: Any) -> str:
        answer: str = native(*args)
        answered[0] += len(answer)
        return answer

    monkeypatch.setattr(cedar_call, "_native_partial", counted)
    world = make_world(sub_caveats=caveats)
    tools = {"t0": SCHEMA, "t1": SCHEMA}
    bundle = world.bundle(policies=policies, tools=tools)
    served = [Tool(name, schema, lambda **kwargs: "ran") for name, schema in tools.items()]
    gate = ToolGate(world.point(world.store(bundle), ListRecorder()), served, clock=FixedClock(T))
    sub = world.credential(world.sub_chain, world.sub)
    shown = [tool.name for tool in gate.available_tools(sub)]
    assert gate.invoke(sub, "t0", ARGS).allowed == ("p99" not in " ".join(caveats))
    return shown, answered[0]


def test_gates_1_caveats_reading_the_arguments_whole_cost_what_they_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown, answered = _listing((WHOLE,) * 7, monkeypatch)
    assert shown == ["t0", "t1"]
    assert answered < 100_000  # ~1.2 MB before: each use with its 64 unknowns, per tool


def test_gates_1_caveats_naming_what_they_read_still_hide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """65g's hiding stays for caveats that name what they read (a missing argument errs)."""
    shown, _ = _listing(('context.args.p99 == "x"',), monkeypatch)
    assert shown == []


def test_gates_1_a_bundle_reading_the_arguments_whole_costs_what_it_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policies = (
        f'@id("all") permit(principal, action in Action::"invoke", resource) when {{ {WHOLE} }};\n'
    )
    shown, answered = _listing((), monkeypatch, policies)
    assert shown == ["t0", "t1"]
    assert answered < 20_000  # ~170 KB before: 16 uses with their 64 unknowns, per tool
