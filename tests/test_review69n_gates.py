"""Review 69n (fresh review of per-call policy evaluation: the Cedar path), findings with their
fixes.

Gates 1. The previews an engine caches (gate 1: the tools a chain is shown, per chain and MCP
server) were bounded by count only (CACHE_ENTRIES, 4,096). Each is a set of up to MAX_TOOLS
names, its own for every chain even where all see the same tools: ~34 KB a chain at MAX_TOOLS
(measured with tracemalloc), so a member's delegates, free to mint, each listing the tools once
(512 at once under the member's preview budget, 2 a second after it under one permit per tool),
held ~140 MB beside the ~64 MiB the chains' entities are bounded to (review 53p, memory 1). The
cache is now bounded by the names it holds too (MAX_CACHED_VISIBLE_NAMES, each preview weighing
its tool count): past it the oldest are dropped and previewed again when next asked (charged to
their member's budget again), a cost, never a wrong answer. The measure is the names held
(deterministic), read from the engine's cache as review 53p reads its entities.
"""

from __future__ import annotations

import pytest

from tests.support.gates import T, make_world
from troth import limits
from troth.gates import compile_policies
from troth.gates.engine import PolicyEngine

NOW = T + 10
TOOLS = 64
CHAINS = 8
BOUND_CHAINS = 3  # the budget set below holds this many chains' previews


def test_gates_1_many_chains_previews_keep_at_most_the_name_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    names = [f"t{i:03d}" for i in range(TOOLS)]
    compiled = compile_policies(
        '@id("all") permit(principal, action, resource);\n',
        "",
        {name: {"type": "object"} for name in names},
    )
    budget = BOUND_CHAINS * TOOLS
    monkeypatch.setattr(limits, "MAX_CACHED_VISIBLE_NAMES", budget, raising=False)
    engine = PolicyEngine(compiled)
    callers = [world.member_credential(*world.new_member()) for _ in range(CHAINS)]
    for caller in callers:
        assert engine.visible_tools(caller, now=NOW) == frozenset(names)
    held = sum(len(shown) for shown in engine._visible.values())
    assert held <= budget, f"{held} names kept for {CHAINS} chains' previews (budget {budget})"
    # an evicted chain's preview is made again, the same
    assert engine.visible_tools(callers[0], now=NOW) == frozenset(names)
